// FormatError: a decoder's verdict that bytes are not a valid structure.
// Decoders never throw anything else for bad input; the engine turns these
// into ERR_STORE_CORRUPT, naming the structure, the block and the reason.

export type StructureName = 'superblock' | 'wal' | 'free set' | 'page' | 'record' | 'data';

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

/**
 * An intact superblock of a format version this code does not read (the
 * engine's ERR_STORE_VERSION): the store is not damaged, only from another
 * version, so it is refused without being read further.
 */
export class FormatVersionError extends FormatError {
  readonly formatVersion: number;
  constructor(formatVersion: number, reason: string, blockIndex?: number) {
    super('superblock', reason, blockIndex);
    this.name = 'FormatVersionError';
    this.formatVersion = formatVersion;
  }
}
