// SpinPolicy: whether a thread should busy-poll, decided from what spinning
// has been worth on this machine lately. (The schedule also serves another
// choice of the same shape: the route of a client's lone reads, below.)
//
// Busy-polling (the actor's spinUs, a JS thread's completionSpinUs) saves a
// thread wake-up per operation — but only if the awaited event comes within
// the window, and only if the core it burns was idle. Both depend on the
// host: on one VM spinning halved QD1 read latency; on another (fewer host
// cores, a slower disk) the same setting was the slowest of all (QD1 4 KiB
// read p50 128 µs spinning vs 91 µs sleeping), because the spinning vCPUs
// took CPU from the hypervisor's IO thread and the reads outlasted the
// window. No fixed default is right everywhere, so in 'auto' mode the
// owner measures both choices as it runs and keeps the better one.
//
// The measure is busy time per fast completion, where busy time is time
// with at least one fast command in flight: at queue depth 1 that is the
// latency, at high queue depth the inverse of throughput, and idle gaps
// between bursts (an open-loop caller) do not count, so they neither favour
// nor penalise a choice. Each epoch gives one such rate (its completions
// over its busy time: the same quantity at any batch size — spinning reaps
// more often in smaller batches, and a statistic over batches would favour
// it). Against the stalls of a shared host, which can halve one epoch's
// rate, each choice is judged by the median of its last three probes.
// The schedule is an explore/exploit loop over "epochs" (at least
// epoch_completions_min completions and epoch_busy_ns_min busy time each):
//
//   probe:   one epoch sleeping and one spinning (their order alternates
//            between probes, so a drift of the machine favours neither).
//   decide:  spin only if its median rate beats sleeping's by at least
//            gain_ppm (spinning costs CPU, so a tie goes to sleeping).
//   exploit: keep the winner for exploit_epochs epochs; the count doubles
//            (up to exploit_epochs_max) each time a probe confirms the same
//            winner and falls back to exploit_epochs_min when it changes, so
//            a stable machine re-probes rarely and a changed one soon.
//
// The losing arm runs for one epoch per probe, so it costs at most
// 1 / (exploit_epochs_max + 2) of the busy time once decisions are stable.
//
// The class is pure: no clocks, no threads. The owner feeds it observations
// (Record) and reads its decision (spinning); one owner thread only.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>

namespace ringstore {

struct SpinPolicyConfig {
  uint32_t epoch_completions_min;
  uint64_t epoch_busy_ns_min;
  uint32_t exploit_epochs_min;
  uint32_t exploit_epochs_max;
  // How much better (parts per million of sleeping's rate) spinning must be.
  // 5 %: with 2 % the actor chose spinning in most QD32 runs here on noise
  // (auto 0.84 × the best fixed setting's IOPS; with 5 %, 0.90).
  uint32_t gain_ppm;
};

// The actor thread's policy. An epoch (at least 128 completions and 8 ms
// busy) is ~10 ms of QD1 reads or QD32 reads here: with 2 ms epochs the
// QD32 probes were coin flips (noise of batching and of the host), with
// 8 ms they settle; a probe pair still ends within a benchmark's warm-up.
constexpr SpinPolicyConfig kActorSpinPolicy = {128, 8'000'000, 2, 64, 50'000};
// A JS thread's policy: the same, with epochs of a different length so its
// probes drift against the actor's instead of always coinciding with them
// (two policies probing in lockstep would only ever compare "both spin"
// with "neither spins").
constexpr SpinPolicyConfig kClientSpinPolicy = {96, 6'000'000, 2, 64, 50'000};
// The same schedule routes a client's lone reads (ring_client.h,
// directReads): the policy's "spinning" arm sends them through the actor,
// its other arm — where it starts, and where a tie goes, since it costs no
// second thread — through the JS thread's own ring. The busy time of a lone
// read is its latency from hand-over to delivery. Which path is faster
// depends on the host: on one the JS thread's ring saved 8-14 us of a QD1
// read (docs/io.md, *Lone reads*), on another the spinning actor was 5 us
// faster (docs/benchmarks.md, session 40). The actor arm is measured under
// whatever the actor's own spin policy does, and that policy learns only
// from the reads this route sends it (its epochs: 128 completions and 8 ms,
// starting asleep): so an epoch here is 256 lone reads and 16 ms, two of
// the actor's, and a probe of the actor arm lets the actor try spinning
// before the arm is judged (found by a review: with 64-read epochs, on a
// host where only a spinning actor wins, the route could settle on the
// JS thread's ring before the actor had ever spun).
constexpr SpinPolicyConfig kLoneReadRoutePolicy = {256, 16'000'000, 2, 64, 50'000};

class SpinPolicy {
 public:
  explicit SpinPolicy(const SpinPolicyConfig& config) : config_(config) {
    assert(config.epoch_completions_min > 0);
    assert(config.exploit_epochs_min >= 1 && config.exploit_epochs_min <= config.exploit_epochs_max);
  }

  // The current decision: busy-poll (true) or sleep at once (false).
  bool spinning() const { return spinning_; }

  // Probes finished so far, and how many of them spinning won (for stats).
  uint64_t probe_count() const { return probe_count_; }
  uint64_t spin_win_count() const { return spin_win_count_; }

  // `completions` fast commands finished during the last `busy_ns` of busy
  // time, under the current decision.
  void Record(uint64_t completions, uint64_t busy_ns) {
    epoch_completions_ += completions;
    epoch_busy_ns_ += busy_ns;
    if (epoch_completions_ < config_.epoch_completions_min || epoch_busy_ns_ < config_.epoch_busy_ns_min) {
      return;
    }
    double rate = static_cast<double>(epoch_completions_) / static_cast<double>(epoch_busy_ns_);
    epoch_completions_ = 0;
    epoch_busy_ns_ = 0;
    EndEpoch(rate);
  }

 private:
  enum class Phase { kProbeFirst, kProbeSecond, kExploit };

  void EndEpoch(double rate) {
    switch (phase_) {
      case Phase::kProbeFirst:
        Smooth(spinning_, rate);
        spinning_ = !spinning_;
        phase_ = Phase::kProbeSecond;
        return;
      case Phase::kProbeSecond: {
        Smooth(spinning_, rate);
        probe_count_++;
        bool spin_wins = spin_history_.Median() * 1e6 >= sleep_history_.Median() * (1e6 + config_.gain_ppm);
        if (spin_wins) spin_win_count_++;
        if (probe_count_ > 1 && spin_wins == spinning_won_last_) {
          exploit_epochs_ = exploit_epochs_ * 2 > config_.exploit_epochs_max ? config_.exploit_epochs_max
                                                                             : exploit_epochs_ * 2;
        } else {
          exploit_epochs_ = config_.exploit_epochs_min;
        }
        spinning_won_last_ = spin_wins;
        spinning_ = spin_wins;
        epochs_left_ = exploit_epochs_;
        phase_ = Phase::kExploit;
        return;
      }
      case Phase::kExploit:
        assert(epochs_left_ > 0);
        if (--epochs_left_ > 0) return;
        // Alternate which arm a probe measures first.
        first_arm_spins_ = !first_arm_spins_;
        spinning_ = first_arm_spins_;
        phase_ = Phase::kProbeFirst;
        return;
    }
  }

  void Smooth(bool spin_arm, double rate) { (spin_arm ? spin_history_ : sleep_history_).Add(rate); }

  // Probes remembered per choice: the median of three survives one epoch
  // hit by a stall of the host.
  static constexpr uint32_t kProbeHistoryCount = 3;

  struct History {
    std::array<double, kProbeHistoryCount> rates{};
    uint32_t count = 0;  // rates recorded so far (the newest at (count - 1) % kProbeHistoryCount)

    void Add(double rate) { rates[count++ % kProbeHistoryCount] = rate; }
    // The median of the recorded rates (of two: their mean).
    double Median() const {
      assert(count > 0);
      uint32_t n = count < kProbeHistoryCount ? count : kProbeHistoryCount;
      std::array<double, kProbeHistoryCount> sorted = rates;
      std::sort(sorted.begin(), sorted.begin() + n);
      return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
  };

  const SpinPolicyConfig config_;
  // The first probe measures sleeping first: before any measurement, the
  // choice that costs no CPU.
  bool spinning_ = false;
  bool first_arm_spins_ = false;
  bool spinning_won_last_ = false;
  Phase phase_ = Phase::kProbeFirst;
  uint32_t exploit_epochs_ = 0;
  uint32_t epochs_left_ = 0;
  uint64_t epoch_completions_ = 0;
  uint64_t epoch_busy_ns_ = 0;
  History spin_history_;   // completions per busy ns of the latest probes
  History sleep_history_;
  uint64_t probe_count_ = 0;
  uint64_t spin_win_count_ = 0;
};

static_assert(kActorSpinPolicy.exploit_epochs_min <= kActorSpinPolicy.exploit_epochs_max);
static_assert(kClientSpinPolicy.exploit_epochs_min <= kClientSpinPolicy.exploit_epochs_max);

}  // namespace ringstore
