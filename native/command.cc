#include "command.h"

#include <errno.h>

#include <cassert>

namespace ringstore {

void Command::AdvanceIov(uint64_t bytes) {
  while (bytes > 0) {
    assert(iov_first < iov.size());
    struct iovec& current = iov[iov_first];
    if (bytes >= current.iov_len) {
      bytes -= current.iov_len;
      iov_first++;
    } else {
      current.iov_base = static_cast<char*>(current.iov_base) + bytes;
      current.iov_len -= bytes;
      bytes = 0;
    }
  }
}

TransferOutcome AfterTransfer(Command* cmd, uint64_t moved) {
  assert(cmd->done_bytes + moved <= cmd->total_bytes);
  cmd->done_bytes += moved;
  if (cmd->done_bytes == cmd->total_bytes) return {true, static_cast<int32_t>(cmd->done_bytes)};
  if (moved == 0) {
    // A read of 0 bytes is end-of-file. A write of 0 bytes makes no
    // progress and would loop forever; the kernel gives no errno for it, so
    // we report the one a full device would give.
    return {true, cmd->IsRead() ? static_cast<int32_t>(cmd->done_bytes) : -ENOSPC};
  }
  if (cmd->direct_alignment != 0 && moved % cmd->direct_alignment != 0) {
    // A direct read that stops off the alignment hit end-of-file inside the
    // last block. A direct write cannot continue off the alignment either
    // (the kernel would answer EINVAL, hiding the real cause); the kernel
    // gave no errno for the short write, so report the device's generic one.
    return {true, cmd->IsRead() ? static_cast<int32_t>(cmd->done_bytes) : -EIO};
  }
  return {false, 0};
}

}  // namespace ringstore
