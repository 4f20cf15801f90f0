// LatencyHistogram: a fixed-size log-linear histogram of microsecond values,
// written by one thread (an actor) and read by any (stats()).
//
// Buckets: values below kLinearUs get one bucket each; above, every power of
// two is split into kSubBuckets buckets, so the relative error of a reported
// percentile is at most 1/kSubBuckets (6%). Counters are relaxed atomics: a
// snapshot taken while the actor runs may be off by the few samples recorded
// during the copy, which is fine for statistics and never a data race.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringstore {

class LatencyHistogram {
 public:
  static constexpr uint32_t kLinearUs = 64;
  static constexpr uint32_t kSubBucketBits = 4;
  static constexpr uint32_t kSubBuckets = 1u << kSubBucketBits;
  // 2^6 .. 2^32 µs in log-linear buckets: ~71 minutes, far beyond any IO.
  static constexpr uint32_t kBucketCount = kLinearUs + (32 - 6) * kSubBuckets;

  void Record(uint64_t value_us) {
    uint32_t index = BucketIndex(value_us);
    counts_[index].store(counts_[index].load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
    if (value_us > max_us_.load(std::memory_order_relaxed)) {
      max_us_.store(value_us, std::memory_order_relaxed);
    }
  }

  struct Summary {
    uint64_t count;
    double p50_us;
    double p99_us;
    double max_us;
    double mean_us;
  };

  Summary Summarize() const {
    uint64_t counts[kBucketCount];
    uint64_t total = 0;
    double sum = 0;
    for (uint32_t i = 0; i < kBucketCount; i++) {
      counts[i] = counts_[i].load(std::memory_order_relaxed);
      total += counts[i];
      sum += static_cast<double>(counts[i]) * BucketMidUs(i);
    }
    Summary summary{total, 0, 0, static_cast<double>(max_us_.load(std::memory_order_relaxed)),
                    total > 0 ? sum / static_cast<double>(total) : 0};
    summary.p50_us = Percentile(counts, total, 0.50);
    summary.p99_us = Percentile(counts, total, 0.99);
    return summary;
  }

  static uint32_t BucketIndex(uint64_t value_us) {
    if (value_us < kLinearUs) return static_cast<uint32_t>(value_us);
    if (value_us >= (uint64_t{1} << 32)) return kBucketCount - 1;
    uint32_t msb = 63 - static_cast<uint32_t>(__builtin_clzll(value_us));  // >= 6
    uint32_t sub = static_cast<uint32_t>(value_us >> (msb - kSubBucketBits)) & (kSubBuckets - 1);
    return kLinearUs + (msb - 6) * kSubBuckets + sub;
  }

  // Lower bound of bucket `index` in µs.
  static double BucketLowUs(uint32_t index) {
    if (index < kLinearUs) return index;
    uint32_t msb = 6 + (index - kLinearUs) / kSubBuckets;
    uint32_t sub = (index - kLinearUs) % kSubBuckets;
    return static_cast<double>((uint64_t{1} << msb) + (uint64_t{sub} << (msb - kSubBucketBits)));
  }

  static double BucketMidUs(uint32_t index) {
    if (index < kLinearUs) return index;
    uint32_t msb = 6 + (index - kLinearUs) / kSubBuckets;
    return BucketLowUs(index) + static_cast<double>(uint64_t{1} << (msb - kSubBucketBits)) / 2;
  }

 private:
  static double Percentile(const uint64_t* counts, uint64_t total, double quantile) {
    if (total == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(quantile * static_cast<double>(total - 1)) + 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < kBucketCount; i++) {
      seen += counts[i];
      if (seen >= rank) return BucketMidUs(i);
    }
    return BucketMidUs(kBucketCount - 1);
  }

  std::atomic<uint64_t> counts_[kBucketCount] = {};
  std::atomic<uint64_t> max_us_{0};
};

static_assert(LatencyHistogram::kBucketCount == 480, "histogram geometry changed");

}  // namespace ringstore
