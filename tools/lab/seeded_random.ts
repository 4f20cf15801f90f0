// A seeded source of numbers in [0, 1) for the lab's explorers: xorshift32.
// Not for anything but reproducible test choices — the same seed gives the
// same sequence on every machine, so a printed seed replays a run.

/** Returns a function giving the next number in [0, 1) of the sequence for `seed` (0 is taken as 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}
