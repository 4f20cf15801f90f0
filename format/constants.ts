// Format constants: every number here is part of the on-disk format
// (docs/format.md). Changing one changes the format version.

export const FORMAT_VERSION = 2;
/** The format of ringstore 0.1: refused with ERR_STORE_VERSION, never read. */
export const FORMAT_VERSION_V1 = 1;

/** "RINGSTOR" */
export const SUPERBLOCK_MAGIC = Uint8Array.from([0x52, 0x49, 0x4e, 0x47, 0x53, 0x54, 0x4f, 0x52]);
/** Bytes of a superblock that carry data: one 512-byte sector, written whole. */
export const SUPERBLOCK_SIZE = 512;
/**
 * Four superblock copies: slots 0 and 1 in blocks 0 and 1 (the head), slots
 * 2 and 3 in the two blocks right after the WAL (the backup pair). A
 * generation g is written to slots g % 2 and 2 + g % 2, so writing g + 1
 * never touches a copy of g, and damage confined to the head (a wipe of the
 * first blocks, a misdirected write) leaves the backup pair to open from.
 */
export const SUPERBLOCK_SLOT_COUNT = 4;
/** Slots in front of the WAL; the other SUPERBLOCK_SLOT_COUNT - this follow it. */
export const SUPERBLOCK_HEAD_SLOT_COUNT = 2;
/** Extents the free-set frame may be written in (its 16-byte entries fill the superblock). */
export const FREE_SET_EXTENTS_MAX = 8;

/** Framed-block magics, "RWAL" and "RFRE" read as little-endian u32. */
export const WAL_BLOCK_MAGIC = 0x4c415752;
export const FREE_SET_BLOCK_MAGIC = 0x45524652;
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

/** Free-set payload header: format u32, reserved u32, dataBlockCount u64. */
export const FREE_SET_HEADER_SIZE = 16;

/**
 * The value encoding a store was created with, recorded in its superblock
 * so that open() and the tools decode values the way they were written.
 */
export const VALUE_ENCODING_IDS = { msgpack: 1, json: 2, string: 3, binary: 4 } as const;
/** WAL commit payload header: recordCount u32, reserved u32, durableSequence u64. */
export const COMMIT_HEADER_SIZE = 16;

/**
 * Tree pages are max(blockSize, PAGE_SIZE_MIN) bytes: a page must hold at
 * least three branch children with 1 KiB separators.
 */
export const PAGE_SIZE_MIN = 4096;
/** Deepest page tree decoded: 32 levels of fan-out >= 2 far exceed any store's key count. */
export const TREE_LEVELS_MAX = 32;
