// fsck: an independent check of a store image. It decodes through format/
// only — never engine code — so it checks the engine rather than agreeing
// with it: the superblock copies, the free set, every page of the tree
// (checksums in parents, levels, key order, separators that bound their
// subtrees), the WAL chain and every record, every extent (inside the data
// region, no block referenced twice, none the free set calls free, none in
// use that nothing references) and every extent value's checksum.
import { commitDurableSequence, readCommitPayload } from '../format/commit.js';
import { BLOCK_SIZE_MAX, BLOCK_SIZE_MIN, SUPERBLOCK_SIZE, SUPERBLOCK_SLOT_COUNT } from '../format/constants.js';
import { crc32c } from '../format/crc32c.js';
import type { Extent } from '../format/extent.js';
import { FormatError } from '../format/format_error.js';
import { decodeFreeSetPayload } from '../format/free_set.js';
import { decodeFrameBlock, frameBlockPayload, frameMagic } from '../format/frame.js';
import { decodePage, pageSizeFor } from '../format/page.js';
import type { ExtentValue, StoredValue } from '../format/records.js';
import { decodeSuperblock, hasSuperblockMagic, inDataRegion, superblockSlotBlock, type Superblock } from '../format/superblock.js';
import { scanWal } from '../format/wal_scan.js';
/** Synchronous random access to the image (a file, a device, or memory). */
export interface ImageReader {
  /** Size of the image in bytes. */
  readonly sizeBytes: number;
  /** `length` bytes from `position`, zeros past the end of the image. */
  read(position: number, length: number): Uint8Array;
}

/** What {@link fsckImage} found. */
export interface FsckReport {
  /** True when no error was found (warnings allowed). */
  ok: boolean;
  /** Damage and inconsistencies, one sentence each. */
  errors: string[];
  /** What a healthy store may show too, such as one bad superblock copy beside a good one. */
  warnings: string[];
  /** The superblock in force, or undefined if no valid copy was found. */
  superblock: Superblock | undefined;
  /**
   * Whether the check ran to its end. A damaged superblock set, tree page or
   * WAL stops it at the first such error: the counts below are then of what
   * it read before it, not of the store (dump --salvage reads past damage).
   */
  complete: boolean;
  /** Keys the store holds (checkpoint plus WAL); see complete. */
  keys: number;
  /** Values stored in data extents rather than inline. */
  extentValues: number;
  /** Tree pages decoded. */
  pages: number;
  /** Data blocks referenced by the free set, the tree and extent values. */
  referencedBlocks: number;
  /** Every referenced extent (free-set blocks, tree pages and extent values), with who references it. */
  references: {
    /** Who references it: 'the free set', a page, or a key. */
    owner: string;
    /** First block, absolute. */
    startBlock: number;
    /** Blocks in the extent. */
    blockCount: number;
  }[];
  /** Commits in the WAL after the checkpoint. */
  walCommits: number;
  /** Why the WAL ends where it does, when it ends at a torn commit (a crash mid-commit), else undefined. */
  tornTail: string | undefined;
  /**
   * 'nothing' (an empty image), 'zeros' or 'data' when no superblock copy
   * and no WAL block carries ringstore's magic: the image holds no store
   * (open() says ERR_STORE_NOT_FOUND), rather than a damaged one; else
   * undefined.
   */
  noStore?: 'nothing' | 'zeros' | 'data';
}

/** An {@link ImageReader} over bytes in memory. */
export function memoryImage(bytes: Uint8Array): ImageReader {
  return {
    sizeBytes: bytes.length,
    read: (position, length) => {
      if (position + length <= bytes.length) return bytes.subarray(position, position + length);
      // Past the end: zeros, as an image file cut short reads (tolerantImage).
      const out = new Uint8Array(length);
      if (position < bytes.length) out.set(bytes.subarray(position));
      return out;
    },
  };
}

/** Told how far fsck got: keys read from the tree, then extent values checked against their CRC. */
export type FsckProgress = (phase: 'tree' | 'values', done: number, total: number) => void;

/**
 * Checks a store image independently of the engine, decoding through the
 * format module only: superblock copies, the free set, every tree page, the
 * WAL chain and its records, every extent (no block referenced twice or
 * both free and used, no leak) and every extent value's checksum.
 * `progress`, if given, is told how far it got.
 */
export function fsckImage(image: ImageReader, progress?: FsckProgress): FsckReport {
  const report: FsckReport = {
    ok: false,
    errors: [],
    warnings: [],
    superblock: undefined,
    keys: 0,
    extentValues: 0,
    pages: 0,
    referencedBlocks: 0,
    references: [],
    walCommits: 0,
    tornTail: undefined,
    complete: false,
  };
  const describe = (error: unknown): string => (error instanceof FormatError ? error.message : String(error));

  const superblock = findSuperblock(image, report, describe);
  if (superblock === undefined) return report;
  report.superblock = superblock;
  const blockSize = superblock.blockSize;
  const pageSize = pageSizeFor(blockSize);

  // Everything the checkpoint references: the free set's frame, the tree's
  // pages, the extent values of its leaves.
  const references: { extent: Extent; owner: string }[] = superblock.freeSetExtents.map((extent) => ({ extent, owner: 'the free set' }));
  const index = new Map<string, StoredValue>();
  /** Data block (relative) -> in use, per the free set; all free before the first checkpoint. */
  let inUse: Uint8Array;
  try {
    inUse = readFreeSetInUse(image, superblock);
    if (superblock.treeRoot !== undefined) {
      const onLeaf = progress === undefined ? undefined : (): void => progress('tree', index.size, superblock.keyCount);
      walkTree(image, superblock, pageSize, { ref: superblock.treeRoot, level: superblock.treeRoot.level, low: undefined, high: undefined, owner: 'the root' }, index, references, report, onLeaf);
    }
    if (index.size !== superblock.keyCount) report.errors.push(`superblock: says ${superblock.keyCount} keys, the tree holds ${index.size}`);
  } catch (error) {
    report.errors.push(describe(error));
    return report;
  }
  for (const [key, value] of index) {
    if (value.kind === 'extents') for (const extent of value.extents) references.push({ extent, owner: `key ${keyForMessage(key)}` });
  }
  checkAgainstFreeSet(superblock, references, inUse, report);

  // WAL replay over the checkpoint's index, the free set followed along: a
  // value a commit writes takes free blocks, a value it replaces gives them back.
  try {
    const region = image.read(superblock.walStartBlock * blockSize, superblock.walBlockCount * blockSize);
    const scan = scanWal(
      { bytes: Uint8Array.prototype.slice.call(region), blockSize, startBlock: superblock.walStartBlock, storeTag: superblock.storeTag },
      superblock.walReplayBlock,
      superblock.checkpointSeq + 1,
    );
    report.tornTail = scan.tornReason;
    // Commits written after the last one known durable may lack their
    // extent data (the crash came before their fdatasync): a commit whose
    // live extent value fails its checksum ends the log, as in recovery.
    // Values such a commit superseded are not checked: their blocks may
    // already be trimmed.
    const commits = scan.commits;
    const decoded = commits.map((commit) => {
      const operations: { key: string; value: StoredValue | undefined }[] = [];
      readCommitPayload(
        commit.payload,
        {
          put: (key, _isString, value) => operations.push({ key: Buffer.from(key).toString('latin1'), value }),
          delete: (key) => operations.push({ key: Buffer.from(key).toString('latin1'), value: undefined }),
        },
        superblock.walStartBlock + commit.startBlock,
        blockSize,
      );
      return operations;
    });
    const durable = commits.length > 0 ? commitDurableSequence(commits[commits.length - 1].payload) : superblock.checkpointSeq;
    let keep = commits.length;
    // A value outside the data region was written so, intact: damage, as
    // recovery says, never a torn tail (its data fails its checksum too;
    // fsck said ok where open() refused: found by a review).
    for (let i = 0; i < keep; i++) {
      for (const { key, value } of decoded[i]) {
        const outside = value?.kind === 'extents' ? value.extents.find((extent) => !inDataRegion(superblock, extent)) : undefined;
        if (outside === undefined) continue;
        report.errors.push(`wal: commit ${commits[i].sequence}: value of key ${keyForMessage(key)} references blocks ${outside.startBlock}+${outside.blockCount} outside the data region`);
        keep = i;
        break;
      }
    }
    for (let changed = true; changed; ) {
      changed = false;
      const lastWriter = new Map<string, { value: StoredValue | undefined; commit: number }>();
      for (let i = 0; i < keep; i++) {
        if (commits[i].sequence <= durable) continue;
        for (const { key, value } of decoded[i]) lastWriter.set(key, { value, commit: i });
      }
      for (const [key, { value, commit }] of lastWriter) {
        if (value?.kind === 'extents' && commit < keep && !extentValueIntact(image, value, blockSize)) {
          keep = commit;
          report.tornTail = `commit ${commits[commit].sequence}: extent data of ${keyForMessage(key)} never reached the disk`;
          changed = true;
        }
      }
    }
    for (let i = 0; i < keep; i++) {
      for (const { key, value } of decoded[i]) {
        const owner = `commit ${commits[i].sequence}, key ${keyForMessage(key)}`;
        const previous = index.get(key);
        if (previous?.kind === 'extents') {
          for (const extent of previous.extents) markBlocks(superblock, inUse, extent, 0, owner, report);
        }
        if (value === undefined) index.delete(key);
        else index.set(key, value.kind === 'inline' ? { kind: 'inline', bytes: Uint8Array.prototype.slice.call(value.bytes) } : value);
        if (value?.kind === 'extents') {
          for (const extent of value.extents) markBlocks(superblock, inUse, extent, 1, owner, report);
        }
      }
      report.walCommits++;
    }
  } catch (error) {
    report.errors.push(describe(error));
    return report;
  }

  // The live values after replay, and every reference once more: the
  // checkpoint's pages and free set, and the values the index holds now.
  const live: { extent: Extent; owner: string }[] = references.filter((reference) => !reference.owner.startsWith('key '));
  let extentValueCount = 0;
  if (progress !== undefined) for (const value of index.values()) if (value.kind === 'extents') extentValueCount++;
  for (const [key, value] of index) {
    if (value.kind !== 'extents') continue;
    report.extentValues++;
    progress?.('values', report.extentValues, extentValueCount);
    for (const extent of value.extents) live.push({ extent, owner: `key ${keyForMessage(key)}` });
    if (!extentValueIntact(image, value, blockSize)) report.errors.push(`data: value of key ${keyForMessage(key)} (block ${value.extents[0].startBlock}) fails its checksum`);
  }
  live.sort((a, b) => a.extent.startBlock - b.extent.startBlock);
  let end = superblock.dataStartBlock;
  let endOwner = 'the WAL';
  for (const { extent, owner } of live) {
    if (!inDataRegion(superblock, extent)) {
      report.errors.push(`${owner}: extent ${extent.startBlock}+${extent.blockCount} lies outside the data region`);
    } else if (extent.startBlock < end) {
      report.errors.push(`${owner} and ${endOwner} both reference block ${extent.startBlock}`);
    }
    report.referencedBlocks += extent.blockCount;
    report.references.push({ owner, startBlock: extent.startBlock, blockCount: extent.blockCount });
    if (extent.startBlock + extent.blockCount > end) {
      end = extent.startBlock + extent.blockCount;
      endOwner = owner;
    }
  }
  report.keys = index.size;
  report.ok = report.errors.length === 0;
  report.complete = true;
  return report;
}

/** The newest valid superblock copy, head or backup; warnings for the others (also used by tools/salvage.ts). */
export function findSuperblock(image: ImageReader, report: Pick<FsckReport, 'errors' | 'warnings' | 'noStore'>, describe: (error: unknown) => string): Superblock | undefined {
  const copies: { slot: number; superblock?: Superblock; error?: string }[] = [];
  const magicAt = (position: number): boolean => position + SUPERBLOCK_SIZE <= image.sizeBytes && hasSuperblockMagic(image.read(position, SUPERBLOCK_SIZE));
  /** Whether any position looked at holds a superblock's magic: with none valid, a damaged store rather than none. */
  let magicSeen = magicAt(0);
  const decodeAt = (slot: number, position: number, blockIndex: number): { slot: number; superblock?: Superblock; error?: string } => {
    if (position + SUPERBLOCK_SIZE > image.sizeBytes) return { slot, error: 'past the end of the image' };
    try {
      return { slot, superblock: decodeSuperblock(image.read(position, SUPERBLOCK_SIZE), blockIndex) };
    } catch (error) {
      return { slot, error: describe(error) };
    }
  };
  copies.push(decodeAt(0, 0, 0));
  const sizes = copies[0].superblock ? [copies[0].superblock.blockSize] : blockSizes();
  let slot1: { slot: number; superblock?: Superblock; error?: string } = { slot: 1, error: 'not found' };
  // A damaged copy is reported with the reason found where it lies — the
  // first block size whose position holds the magic — not the last size
  // tried (found by a review: a copy with a bad checksum was reported as
  // "bad magic", from a 64 KiB position where there is none).
  let slot1HasMagic = false;
  for (const size of sizes) {
    const candidate = decodeAt(1, size, 1);
    if (candidate.superblock !== undefined) {
      if (candidate.superblock.blockSize !== size) continue;
      slot1 = candidate;
      break;
    }
    if (slot1HasMagic) continue;
    slot1 = candidate;
    slot1HasMagic = magicAt(size);
    magicSeen ||= slot1HasMagic;
  }
  copies.push(slot1);
  let layout = copies.find((copy) => copy.superblock !== undefined)?.superblock;
  if (layout === undefined) {
    // No head copy: search the backup pair at sector boundaries within the largest WAL.
    const limit = Math.min(image.sizeBytes, 4 * BLOCK_SIZE_MAX + (1 << 30));
    for (let position = 0; position + SUPERBLOCK_SIZE <= limit && layout === undefined; position += BLOCK_SIZE_MIN) {
      const bytes = image.read(position, SUPERBLOCK_SIZE);
      if (!hasSuperblockMagic(bytes)) continue;
      magicSeen = true;
      const found = decodeAt(2, position, position / BLOCK_SIZE_MIN).superblock;
      if (found !== undefined && [2, 3].some((slot) => superblockSlotBlock(slot, found.walStartBlock, found.walBlockCount) * found.blockSize === position)) layout = found;
    }
  }
  if (layout !== undefined) {
    for (let slot = 2; slot < SUPERBLOCK_SLOT_COUNT; slot++) {
      const block = superblockSlotBlock(slot, layout.walStartBlock, layout.walBlockCount);
      const copy = decodeAt(slot, block * layout.blockSize, block);
      if (copy.superblock !== undefined && (copy.superblock.blockSize !== layout.blockSize || copy.superblock.walBlockCount !== layout.walBlockCount)) {
        copies.push({ slot, error: 'describes another geometry than the copy that locates it' });
      } else {
        copies.push(copy);
      }
    }
  }
  const valid = copies.filter((copy) => copy.superblock !== undefined).sort((a, b) => b.superblock!.generation - a.superblock!.generation);
  for (const copy of copies) if (copy.error !== undefined) report.warnings.push(`superblock slot ${copy.slot}: ${copy.error}`);
  if (valid.length === 0) {
    if (!magicSeen && !walMagicBehindHead(image)) {
      // The engine's judgement too (probeSuperblocks): a file that never
      // held a store is no damaged store, and open() says so.
      const headBytes = Math.min(image.sizeBytes, 4096);
      report.noStore = headBytes === 0 ? 'nothing' : image.read(0, headBytes).every((byte) => byte === 0) ? 'zeros' : 'data';
      report.errors.push(`no ringstore: no superblock copy, head or backup, and no WAL block carries ringstore's magic (the image holds ${report.noStore})`);
      return undefined;
    }
    report.errors.push('no valid superblock');
    return undefined;
  }
  const superblock = valid[0].superblock!;
  for (const copy of valid) {
    if (copy.superblock!.storeTag !== superblock.storeTag) report.errors.push(`superblock slot ${copy.slot}: belongs to another store (tag ${copy.superblock!.storeTag})`);
  }
  const imageBlocks = Math.floor(image.sizeBytes / superblock.blockSize);
  if (superblock.blockCount > imageBlocks) {
    // A copy cut short (open() sends such a file to dump --salvage): what
    // lies past its end reads as zeros, so the pages and values there fail
    // their checksums and are reported and skipped as damage elsewhere is.
    // Giving up here salvaged nothing from a file that lost only unused
    // blocks (found by a review).
    report.errors.push(
      `the image is cut short: the superblock names ${superblock.blockCount} blocks of ${superblock.blockSize} bytes, the image holds ${image.sizeBytes} bytes; blocks ${imageBlocks} to ${superblock.blockCount - 1} are missing and read as zeros`,
    );
  }
  return superblock;
}

interface PageVisit {
  ref: { block: number; crc: number };
  level: number;
  /** Every key under this page is >= low (when defined) and < high (when defined). */
  low: string | undefined;
  high: string | undefined;
  owner: string;
}

/** Decodes every page under `start`, collecting entries and page references; throws on the first damaged page. */
function walkTree(
  image: ImageReader,
  superblock: Superblock,
  pageSize: number,
  start: PageVisit,
  index: Map<string, StoredValue>,
  references: { extent: Extent; owner: string }[],
  report: FsckReport,
  onLeaf?: () => void,
): void {
  const blockSize = superblock.blockSize;
  const stack: PageVisit[] = [start];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    const { ref, level } = visit;
    if (ref.block < superblock.dataStartBlock || (ref.block * blockSize) + pageSize > superblock.blockCount * blockSize) {
      throw new FormatError('page', `${visit.owner} points at block ${ref.block}, outside the data region`, ref.block);
    }
    const page = decodePage(image.read(ref.block * blockSize, pageSize), {
      address: ref.block,
      storeTag: superblock.storeTag,
      crc: ref.crc,
      level,
      dataStartBlock: superblock.dataStartBlock,
      blockCount: superblock.blockCount,
      blockSize,
    });
    report.pages++;
    references.push({ extent: { startBlock: ref.block, blockCount: pageSize / blockSize }, owner: `page at level ${level} (${visit.owner})` });
    const inBounds = (key: string): boolean => (visit.low === undefined || key >= visit.low) && (visit.high === undefined || key < visit.high);
    if (page.kind === 'leaf') {
      for (const entry of page.entries) {
        const key = Buffer.from(entry.key).toString('latin1');
        if (!inBounds(key)) throw new FormatError('page', `key ${keyForMessage(key)} lies outside the separators that lead to its leaf`, ref.block);
        if (index.has(key)) throw new FormatError('page', `key ${keyForMessage(key)} appears in two leaves`, ref.block);
        index.set(key, entry.value.kind === 'inline' ? { kind: 'inline', bytes: Uint8Array.prototype.slice.call(entry.value.bytes) } : entry.value);
      }
      onLeaf?.();
      continue;
    }
    const separators = page.children.map((child) => (child.separator === undefined ? undefined : Buffer.from(child.separator).toString('latin1')));
    for (const separator of separators) {
      if (separator !== undefined && !inBounds(separator)) throw new FormatError('page', `separator ${JSON.stringify(separator.slice(0, 40))} lies outside its page's bounds`, ref.block);
    }
    for (let i = page.children.length - 1; i >= 0; i--) {
      const child = page.children[i];
      stack.push({
        ref: { block: child.block, crc: child.crc },
        level: level - 1,
        low: i === 0 ? visit.low : separators[i],
        high: i + 1 < page.children.length ? separators[i + 1] : visit.high,
        owner: `child ${i} of the page at block ${ref.block}`,
      });
    }
  }
}

/**
 * The checkpoint's references against its free set: each referenced block
 * marked in use and referenced once; each block marked in use referenced
 * (else it leaked).
 */
function checkAgainstFreeSet(superblock: Superblock, references: { extent: Extent; owner: string }[], inUse: Uint8Array, report: FsckReport): void {
  if (superblock.freeSetExtents.length === 0) {
    if (references.length > 0) report.errors.push('free set: none recorded, but the checkpoint references blocks');
    return;
  }
  const owners = new Map<number, string>();
  for (const { extent, owner } of references) {
    for (let block = extent.startBlock; block < extent.startBlock + extent.blockCount; block++) {
      const relative = block - superblock.dataStartBlock;
      if (relative < 0 || relative >= inUse.length) continue; // reported as outside the data region later
      const other = owners.get(block);
      if (other !== undefined) {
        report.errors.push(`${owner} and ${other} both reference block ${block}`);
        return;
      }
      owners.set(block, owner);
      if (inUse[relative] !== 1) {
        report.errors.push(`free set: block ${block} of ${owner} is marked free`);
        return;
      }
    }
  }
  for (let relative = 0; relative < inUse.length; relative++) {
    if (inUse[relative] === 1 && !owners.has(superblock.dataStartBlock + relative)) {
      report.errors.push(`free set: block ${superblock.dataStartBlock + relative} is marked in use but nothing references it (leaked)`);
      return;
    }
  }
}

/** WAL replay's step on the free set: `to` 1 takes a free extent, 0 gives back one in use. */
function markBlocks(superblock: Superblock, inUse: Uint8Array, extent: Extent, to: 0 | 1, owner: string, report: FsckReport): void {
  for (let block = extent.startBlock; block < extent.startBlock + extent.blockCount; block++) {
    const relative = block - superblock.dataStartBlock;
    if (relative < 0 || relative >= inUse.length) return; // reported as outside the data region later
    if (inUse[relative] === to) {
      report.errors.push(`free set: ${owner} ${to === 1 ? 'writes block' : 'replaces a value in block'} ${block}, which is already ${to === 1 ? 'in use' : 'free'}`);
      return;
    }
    inUse[relative] = to;
  }
}

function extentValueIntact(image: ImageReader, value: ExtentValue, blockSize: number): boolean {
  let crc = 0;
  let remaining = value.length;
  for (const extent of value.extents) {
    if ((extent.startBlock + extent.blockCount) * blockSize > image.sizeBytes) return false;
    const bytes = image.read(extent.startBlock * blockSize, extent.blockCount * blockSize);
    const used = Math.min(remaining, bytes.length);
    crc = crc32c(bytes.subarray(0, used), crc);
    remaining -= used;
  }
  return remaining === 0 && crc === value.crc;
}

/** Whether a WAL block's magic lies where the WAL starts (block 2) for some block size: a store whose superblocks are all gone. */
function walMagicBehindHead(image: ImageReader): boolean {
  for (let blockSize = BLOCK_SIZE_MIN; blockSize <= BLOCK_SIZE_MAX && 2 * blockSize + 4 <= image.sizeBytes; blockSize *= 2) {
    const word = image.read(2 * blockSize, 4);
    if (new DataView(word.buffer, word.byteOffset, 4).getUint32(0, true) === frameMagic('wal')) return true;
  }
  return false;
}

function blockSizes(): number[] {
  const sizes: number[] = [];
  for (let size = BLOCK_SIZE_MIN; size <= BLOCK_SIZE_MAX; size *= 2) sizes.push(size);
  return sizes;
}

/**
 * The checkpoint's free set as one byte per data block (1: in use; all 0
 * before the first checkpoint), every frame block checked against the
 * superblock. Throws FormatError naming the block that is wrong.
 */
export function readFreeSetInUse(image: ImageReader, superblock: Superblock): Uint8Array {
  const blockSize = superblock.blockSize;
  const dataBlockCount = superblock.blockCount - superblock.dataStartBlock;
  // Only the data blocks the image holds: a superblock may name more (a
  // copy cut short, or a forged count: found by a review, 2^40 blocks threw
  // a RangeError here); past the image's end nothing is stored, and an
  // index past this array's end reads as not in use.
  const imageDataBlocks = Math.max(0, Math.min(superblock.blockCount, Math.floor(image.sizeBytes / blockSize)) - superblock.dataStartBlock);
  const inUse = new Uint8Array(imageDataBlocks);
  if (superblock.freeSetExtents.length === 0) return inUse;
  const blocks: number[] = [];
  for (const extent of superblock.freeSetExtents) {
    if ((extent.startBlock + extent.blockCount) * blockSize > image.sizeBytes) {
      throw new FormatError('free set', `its extent ${extent.startBlock}+${extent.blockCount} lies past the end of the image (${image.sizeBytes} bytes)`, extent.startBlock);
    }
    for (let i = 0; i < extent.blockCount; i++) blocks.push(extent.startBlock + i);
  }
  if (superblock.freeSetByteLength > blocks.length * blockSize) throw new FormatError('free set', `${superblock.freeSetByteLength} bytes do not fit its ${blocks.length} blocks`, blocks[0]);
  const payload = new Uint8Array(superblock.freeSetByteLength);
  let offset = 0;
  blocks.forEach((block, i) => {
    const bytes = image.read(block * blockSize, blockSize);
    const header = decodeFrameBlock('free set', bytes, block);
    if (header.sequence !== superblock.checkpointSeq || header.storeTag !== superblock.storeTag || header.blockIndex !== i || header.blockCount !== blocks.length) {
      throw new FormatError('free set', `block holds ${header.blockIndex}/${header.blockCount} of checkpoint ${header.sequence}`, block);
    }
    const part = frameBlockPayload(bytes, header);
    if (offset + part.length > payload.length) throw new FormatError('free set', 'longer than the superblock says', block);
    payload.set(part, offset);
    offset += part.length;
  });
  if (offset !== payload.length) throw new FormatError('free set', `${offset} bytes, superblock says ${payload.length}`, blocks[0]);
  inUse.fill(1);
  for (const extent of decodeFreeSetPayload(payload, superblock.dataStartBlock, dataBlockCount, blocks[0])) {
    inUse.fill(0, extent.startBlock - superblock.dataStartBlock, extent.startBlock - superblock.dataStartBlock + extent.blockCount);
  }
  return inUse;
}

// ignoreBOM: a key that starts with U+FEFF keeps it (the default drops it).
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Characters of a key a message shows, at most. */
const KEY_MESSAGE_CHARS_MAX = 40;

/**
 * A key (the index's string of one char a byte) as a message names it: its
 * bytes as UTF-8 text when they are (a string key, as the caller wrote it),
 * else in hex. Shown as it was stored, the chars of "é" read "Ã©".
 */
function keyForMessage(keyString: string): string {
  const bytes = Buffer.from(keyString, 'latin1');
  try {
    const text = STRICT_UTF8.decode(bytes);
    return JSON.stringify(text.length > KEY_MESSAGE_CHARS_MAX ? `${text.slice(0, KEY_MESSAGE_CHARS_MAX)}…` : text);
  } catch {
    return `0x${bytes.subarray(0, KEY_MESSAGE_CHARS_MAX / 2).toString('hex')}${bytes.length > KEY_MESSAGE_CHARS_MAX / 2 ? '…' : ''}`;
  }
}
