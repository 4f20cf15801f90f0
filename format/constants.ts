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

/**
 * The largest WAL region a store has (docs/format.md): a store whose head is
 * gone has its backup superblocks searched for up to this far past the head,
 * so no writer may make a larger one.
 */
export const WAL_SIZE_BYTES_MAX = 1 << 30;

/** Free-set payload header: format u32, reserved u32, dataBlockCount u64. */
export const FREE_SET_HEADER_SIZE = 16;

/**
 * The value encoding a store was created with, recorded in its superblock
 * so that open() and the tools decode values the way they were written.
 */
export const VALUE_ENCODING_IDS = { msgpack: 1, json: 2, string: 3, binary: 4 } as const;
/** WAL commit payload header: recordCount u32, reserved u32, durableSequence u64. */
export const COMMIT_HEADER_SIZE = 16;

// Format 2: copy-on-write B+tree pages (docs/format.md § Tree pages).

/** Tree page magic, "RPAG" read as little-endian u32. */
export const PAGE_MAGIC = 0x47415052;
/**
 * Bytes of a tree page's header: magic, crc, address, checkpointSequence,
 * storeTag, kind, level, entryCount, usedBytes and 12 reserved bytes. About
 * 1% of a 4 KiB page.
 */
export const PAGE_HEADER_SIZE = 48;
/**
 * Smallest tree page, in bytes: a page is one block, or 4096 / B blocks when
 * blocks are smaller (8 blocks of 512 B). A branch child with a 1 KiB
 * separator takes 1038 bytes, so a 512-byte page could not hold even one;
 * 4 KiB holds child 0 and 3 of them: 4 children.
 */
export const PAGE_SIZE_MIN = 4096;
/** Tree page kinds (the header's `kind` byte). */
export const PAGE_KIND_LEAF = 1;
export const PAGE_KIND_BRANCH = 2;
/**
 * Levels a tree may have (leaves are level 0, so the root is at most level
 * TREE_LEVELS_MAX - 1). Even at the 2 children a branch must have, 32 levels
 * reach 2^31 leaves, and a 4 KiB branch has room for 4 children with 1 KiB
 * separators (hundreds with short keys): a deeper tree is damage or a bug,
 * and the bound keeps every descent finite.
 */
export const TREE_LEVELS_MAX = 32;

/**
 * Sequence numbers (commits, checkpoints) and superblock generations lie
 * below 2^52. Each advances by one a commit or a checkpoint, so no store
 * comes near it (at a commit a microsecond, 142 years), and a value past it
 * could not advance: the next number would not be a safe integer. A reader
 * refuses one as damage.
 */
export const SEQUENCE_LIMIT = 2 ** 52;
