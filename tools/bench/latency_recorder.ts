// LatencyRecorder: every operation's latency in a measurement, kept exactly,
// and the percentiles of them.
//
// Samples are nanoseconds in a Float64Array that doubles when full, so the
// hot path stores one number and allocates only on the rare growth. Memory is
// bounded by SAMPLE_COUNT_MAX; a run that completes more operations keeps the
// first SAMPLE_COUNT_MAX latencies (still counting every operation), which at
// the disk's ~100 k IOPS is more than two minutes of samples.
import assert from 'node:assert/strict';

/** Capacity a recorder starts with: 64 Ki samples, 512 KiB. */
export const SAMPLE_COUNT_INITIAL = 1 << 16;
/** Most samples one recorder keeps: 16 Mi samples, 128 MiB. */
export const SAMPLE_COUNT_MAX = 1 << 24;
assert.ok(SAMPLE_COUNT_INITIAL <= SAMPLE_COUNT_MAX);

export interface LatencyPercentilesUs {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export class LatencyRecorder {
  #samplesNs = new Float64Array(SAMPLE_COUNT_INITIAL);
  #sampleCount = 0;
  /** Operations recorded, including any past SAMPLE_COUNT_MAX. */
  #opCount = 0;

  get opCount(): number {
    return this.#opCount;
  }

  /** Records one operation that took `latencyNs` nanoseconds. */
  record(latencyNs: number): void {
    this.#opCount++;
    if (this.#sampleCount === this.#samplesNs.length) {
      if (this.#samplesNs.length === SAMPLE_COUNT_MAX) return;
      const grown = new Float64Array(Math.min(this.#samplesNs.length * 2, SAMPLE_COUNT_MAX));
      grown.set(this.#samplesNs);
      this.#samplesNs = grown;
    }
    this.#samplesNs[this.#sampleCount++] = latencyNs;
  }

  /**
   * Percentiles by the nearest-rank method (the smallest sample with at
   * least that fraction of samples at or below it), in microseconds.
   */
  percentilesUs(): LatencyPercentilesUs {
    const count = this.#sampleCount;
    if (count === 0) return { p50: 0, p99: 0, max: 0, mean: 0 };
    const sorted = this.#samplesNs.subarray(0, count).sort();
    let sumNs = 0;
    for (let i = 0; i < count; i++) sumNs += sorted[i];
    const result = {
      p50: nearestRank(sorted, 0.5) / 1000,
      p99: nearestRank(sorted, 0.99) / 1000,
      max: sorted[count - 1] / 1000,
      mean: sumNs / count / 1000,
    };
    assert.ok(result.p50 <= result.p99 && result.p99 <= result.max);
    return result;
  }
}

function nearestRank(sorted: Float64Array, quantile: number): number {
  assert.ok(sorted.length > 0 && quantile > 0 && quantile <= 1);
  return sorted[Math.ceil(quantile * sorted.length) - 1];
}

/** The median of a non-empty list (the mean of the middle two for even lengths). */
export function median(values: readonly number[]): number {
  assert.ok(values.length > 0, 'median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
