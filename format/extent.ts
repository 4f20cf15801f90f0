/** A run of consecutive blocks: [startBlock, startBlock + blockCount). Absolute block indexes. */
export interface Extent {
  startBlock: number;
  blockCount: number;
}

/** The blocks of `extents` together. */
export function extentsBlockCount(extents: readonly Extent[]): number {
  let blockCount = 0;
  for (const extent of extents) blockCount += extent.blockCount;
  return blockCount;
}
