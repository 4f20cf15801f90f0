// Format constants: every number here is part of the on-disk format
// (docs/format.md). Changing one changes the format version.

export const FORMAT_VERSION = 1;

/** "RINGSTOR" */
export const SUPERBLOCK_MAGIC = Uint8Array.from([0x52, 0x49, 0x4e, 0x47, 0x53, 0x54, 0x4f, 0x52]);
/** Bytes of a superblock that carry data: one 512-byte sector, written whole. */
export const SUPERBLOCK_SIZE = 512;
/** The two superblock copies live in blocks 0 and 1. */
export const SUPERBLOCK_SLOT_COUNT = 2;
/** Checkpoint extents a superblock can name. */
export const CHECKPOINT_EXTENTS_MAX = 16;

/** Framed-block magics, "RWAL" and "RCKP" read as little-endian u32. */
export const WAL_BLOCK_MAGIC = 0x4c415752;
export const CHECKPOINT_BLOCK_MAGIC = 0x504b4352;
export const FRAME_HEADER_SIZE = 32;

/** Record types inside WAL commits and checkpoints. */
export const RECORD_PUT_INLINE = 1;
export const RECORD_PUT_EXTENTS = 2;
export const RECORD_DELETE = 3;

/** Key flag bit: the key was given as a string (its bytes are UTF-8). */
export const KEY_FLAG_STRING = 1;
/**
 * Bit 1 of the same `keyFlags` byte, PUT_EXTENTS records only: the value's
 * bytes were stored raw (a write stream), not by the store's value encoding,
 * so they are read back as bytes whatever the encoding.
 */
export const VALUE_FLAG_RAW = 2;

/** Largest key, in bytes (lmdb-js allows 1978; 1 KiB keeps index memory sane). */
export const KEY_SIZE_MAX = 1024;
/** Extents one extent value may have. */
export const VALUE_EXTENTS_MAX = 65535;

export const BLOCK_SIZE_MIN = 512;
export const BLOCK_SIZE_MAX = 65536;

/** Checkpoint payload header: format u32, reserved u32, entryCount u64. */
export const CHECKPOINT_HEADER_SIZE = 16;
/** WAL commit payload header: recordCount u32, reserved u32, durableSequence u64. */
export const COMMIT_HEADER_SIZE = 16;
