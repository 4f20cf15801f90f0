#include "command.h"

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

}  // namespace ringstore
