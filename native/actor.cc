#include "actor.h"

#include <time.h>

#include <cassert>
#include <unordered_map>

namespace ringstore {

uint64_t MonotonicNowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The registry of live actors, by id. It is process-wide on purpose: worker
// threads load their own instance of the addon, and attaching to a ring
// started on another thread is the point. Entries are weak, so the registry
// never keeps an actor alive; ids are never reused within a process.
namespace {
std::mutex g_registry_mu;
std::unordered_map<uint32_t, std::weak_ptr<Actor>>* g_registry = nullptr;  // guarded
uint32_t g_next_actor_id = 1;                                               // guarded
}  // namespace

Actor::Actor(const ActorOptions& options) : options_(options) {}

Actor::~Actor() {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  if (g_registry != nullptr) g_registry->erase(id_);
  // Every command was completed before the last client detached.
  assert(queue_head_ == nullptr);
}

void Actor::Publish(const std::shared_ptr<Actor>& actor) {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  if (g_registry == nullptr) g_registry = new std::unordered_map<uint32_t, std::weak_ptr<Actor>>();
  actor->id_ = g_next_actor_id++;
  (*g_registry)[actor->id_] = actor;
}

std::shared_ptr<Actor> Actor::Find(uint32_t id) {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  if (g_registry == nullptr) return nullptr;
  auto it = g_registry->find(id);
  if (it == g_registry->end()) return nullptr;
  return it->second.lock();
}

void Actor::Enqueue(Command* cmd, bool wake) {
  assert(cmd->next == nullptr);
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (queue_tail_ == nullptr) {
      queue_head_ = queue_tail_ = cmd;
    } else {
      queue_tail_->next = cmd;
      queue_tail_ = cmd;
    }
    queue_count_.fetch_add(1, std::memory_order_seq_cst);
  }
  commands_enqueued_.fetch_add(1, std::memory_order_relaxed);
  if (wake) Wake();
}

Command* Actor::TakeQueued(uint32_t count_max) {
  assert(count_max > 0);
  std::lock_guard<std::mutex> lock(queue_mu_);
  Command* head = queue_head_;
  if (head == nullptr) return nullptr;
  Command* last = head;
  uint32_t taken = 1;
  while (taken < count_max && last->next != nullptr) {
    last = last->next;
    taken++;
  }
  queue_head_ = last->next;
  if (queue_head_ == nullptr) queue_tail_ = nullptr;
  last->next = nullptr;
  queue_count_.fetch_sub(taken, std::memory_order_seq_cst);
  return head;
}

void Actor::RecordSubmitted(Command* cmd, uint64_t now_ns) {
  if (cmd->submitted_ns != 0) return;  // a continuation of a short transfer
  cmd->submitted_ns = now_ns;
  queued_us_.Record(now_ns > cmd->enqueued_ns ? (now_ns - cmd->enqueued_ns) / 1000 : 0);
  commands_submitted_.fetch_add(1, std::memory_order_relaxed);
}

void Actor::RecordCompleted(Command* cmd, uint64_t now_ns) {
  assert(cmd->submitted_ns != 0);
  kernel_us_.Record(now_ns > cmd->submitted_ns ? (now_ns - cmd->submitted_ns) / 1000 : 0);
  commands_completed_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t Actor::InjectShortTransfer(const Command& cmd, uint64_t moved) {
  assert(options_.short_transfer_every != 0);
  assert(moved > 0);
  // Relaxed: a test counter. The thread pool's threads share it, and which
  // of two concurrent completions becomes the Nth does not matter.
  uint64_t count = injection_transfer_count_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (count % options_.short_transfer_every != 0) return moved;
  uint64_t unit = cmd.direct_alignment != 0 ? cmd.direct_alignment : 1;
  uint64_t shortened = moved / 2 / unit * unit;
  if (shortened == 0) shortened = unit;
  if (shortened >= moved) return moved;
  // A continuation of a direct transfer must start on the alignment.
  assert(shortened % unit == 0);
  return shortened;
}

ActorStats Actor::Stats() const {
  ActorStats stats;
  stats.commands_submitted = commands_submitted_.load(std::memory_order_relaxed);
  stats.commands_completed = commands_completed_.load(std::memory_order_relaxed);
  stats.sqes_submitted = sqes_submitted_.load(std::memory_order_relaxed);
  stats.batches = batches_.load(std::memory_order_relaxed);
  stats.waits = waits_.load(std::memory_order_relaxed);
  stats.continuations = continuations_.load(std::memory_order_relaxed);
  stats.spin_adaptive = options_.spin_adaptive;
  stats.spinning = spinning_now_.load(std::memory_order_relaxed);
  stats.spin_probe_count = spin_probe_count_.load(std::memory_order_relaxed);
  stats.spin_win_count = spin_win_count_.load(std::memory_order_relaxed);
  uint64_t enqueued = commands_enqueued_.load(std::memory_order_relaxed);
  stats.in_flight = enqueued >= stats.commands_completed ? enqueued - stats.commands_completed : 0;
  stats.queued = queued_us_.Summarize();
  stats.kernel = kernel_us_.Summarize();
  return stats;
}

void CompletionBatch::Add(Command* cmd, int32_t result, Stage stage) {
  items_.push_back(Item{cmd->client, Completion{cmd->slot, result, stage}});
}

void CompletionBatch::Flush() {
  // Post consecutive runs for the same client together: usually the whole
  // batch belongs to one JS thread and this is a single Post.
  size_t begin = 0;
  Completion run[64];
  while (begin < items_.size()) {
    CompletionSink* client = items_[begin].client;
    size_t count = 0;
    size_t i = begin;
    while (i < items_.size() && items_[i].client == client && count < 64) {
      run[count++] = items_[i].completion;
      i++;
    }
    client->Post(run, count);
    begin = i;
  }
  items_.clear();
}

}  // namespace ringstore
