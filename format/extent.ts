/** A run of consecutive blocks: [startBlock, startBlock + blockCount). Absolute block indexes. */
export interface Extent {
  startBlock: number;
  blockCount: number;
}
