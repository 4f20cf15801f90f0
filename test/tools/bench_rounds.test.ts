// The store bench's writer phases in rounds (tools/bench/store_workloads.ts):
// each round's order rotated so no contender always runs first, and a row
// that is one whole round (its rate the median), not a mix of rounds.
import assert from 'node:assert/strict';

import { medianRound, roundOrder, WRITER_PHASE_ROUNDS, type StoreMeasurement } from '../../tools/bench/store_workloads.js';

function measurement(opsPerSecond: number, p50: number): StoreMeasurement {
  return {
    opCount: 1_000,
    elapsedSeconds: 1_000 / opsPerSecond,
    opsPerSecond,
    bandwidthMiBps: undefined,
    latencyUs: { p50, p99: p50 * 2, max: p50 * 4, mean: p50 },
    cpuPercent: 50,
    note: undefined,
  };
}

describe('bench writer rounds', () => {
  it('runs every contender once a round, each first in at most one round', () => {
    for (const count of [1, 2, 3, 6, 8]) {
      const contenders = Array.from({ length: count }, (_, index) => `c${index}`);
      const firsts = new Map<string, number>();
      for (let round = 0; round < WRITER_PHASE_ROUNDS; round++) {
        const order = roundOrder(contenders, round, WRITER_PHASE_ROUNDS);
        assert.deepEqual([...order].sort(), [...contenders].sort(), `round ${round} of ${count} runs each contender once`);
        firsts.set(order[0]!, (firsts.get(order[0]!) ?? 0) + 1);
      }
      if (count >= WRITER_PHASE_ROUNDS) for (const [contender, times] of firsts) assert.equal(times, 1, `${contender} first in ${times} rounds of ${count} contenders`);
    }
  });

  it('moves the first contender of round 0 to a later place in every other round', () => {
    const contenders = ['ringstore', 'spin', 'level', 'lmdb', 'classic', 'sqlite'];
    const places = Array.from({ length: WRITER_PHASE_ROUNDS }, (_, round) => roundOrder(contenders, round, WRITER_PHASE_ROUNDS).indexOf('ringstore'));
    assert.equal(places[0], 0);
    assert.equal(new Set(places).size, WRITER_PHASE_ROUNDS, `places ${places.join(', ')}`);
  });

  it('reports the round whose rate is the median, with that round’s own latencies', () => {
    const rounds = [measurement(5_000, 200), measurement(7_000, 140), measurement(6_000, 170)];
    const chosen = medianRound(rounds);
    assert.equal(chosen.opsPerSecond, 6_000);
    assert.equal(chosen.latencyUs?.p50, 170);
    assert.equal(medianRound([measurement(4_000, 1), measurement(9_000, 2)]).opsPerSecond, 4_000);
    assert.throws(() => medianRound([]));
  });
});
