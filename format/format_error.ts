// FormatError: a decoder's verdict that bytes are not a valid structure.
// Decoders never throw anything else for bad input; the engine turns these
// into ERR_STORE_CORRUPT, naming the structure, the block and the reason.

export type StructureName = 'superblock' | 'wal' | 'checkpoint' | 'record' | 'data' | 'page';

export class FormatError extends Error {
  readonly structure: StructureName;
  /** Absolute block index of the damaged block, when one block is to blame. */
  readonly blockIndex: number | undefined;
  readonly reason: string;
  constructor(structure: StructureName, reason: string, blockIndex?: number) {
    super(`${structure}${blockIndex === undefined ? '' : ` block ${blockIndex}`}: ${reason}`);
    this.name = 'FormatError';
    this.structure = structure;
    this.blockIndex = blockIndex;
    this.reason = reason;
  }
}
