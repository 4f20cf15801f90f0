// fsck: an independent check of a store image. It decodes through format/
// only — never engine code — so it checks the engine rather than agreeing
// with it: superblocks, checkpoint, WAL chain, every record, every extent
// (inside the data region, no block referenced twice) and every extent
// value's checksum.
import { readCheckpointPayload } from '../format/checkpoint.js';
import { commitDurableSequence, readCommitPayload } from '../format/commit.js';
import { BLOCK_SIZE_MAX, BLOCK_SIZE_MIN, SUPERBLOCK_SIZE } from '../format/constants.js';
import { crc32c } from '../format/crc32c.js';
import type { Extent } from '../format/extent.js';
import { FormatError } from '../format/format_error.js';
import { decodeFrameBlock, frameBlockPayload } from '../format/frame.js';
import type { ExtentValue, RecordVisitor, StoredValue } from '../format/records.js';
import { decodeSuperblock, type Superblock } from '../format/superblock.js';
import { scanWal } from '../format/wal_scan.js';

/** Synchronous random access to the image (a file, a device, or memory). */
export interface ImageReader {
  readonly sizeBytes: number;
  read(position: number, length: number): Uint8Array;
}

export interface FsckReport {
  ok: boolean;
  errors: string[];
  warnings: string[];
  superblock: Superblock | undefined;
  keys: number;
  extentValues: number;
  referencedBlocks: number;
  /** Every referenced extent (checkpoint blocks and extent values), with who references it. */
  references: { owner: string; startBlock: number; blockCount: number }[];
  walCommits: number;
  tornTail: string | undefined;
}

export function memoryImage(bytes: Uint8Array): ImageReader {
  return { sizeBytes: bytes.length, read: (position, length) => bytes.subarray(position, position + length) };
}

export function fsckImage(image: ImageReader): FsckReport {
  const report: FsckReport = {
    ok: false,
    errors: [],
    warnings: [],
    superblock: undefined,
    keys: 0,
    extentValues: 0,
    referencedBlocks: 0,
    references: [],
    walCommits: 0,
    tornTail: undefined,
  };
  const describe = (error: unknown): string => (error instanceof FormatError ? error.message : String(error));

  // Superblocks: slot 0 at 0; slot 1 one block in (block size from slot 0, or tried).
  const copies: { slot: number; superblock?: Superblock; error?: string }[] = [];
  try {
    copies.push({ slot: 0, superblock: decodeSuperblock(image.read(0, SUPERBLOCK_SIZE), 0) });
  } catch (error) {
    copies.push({ slot: 0, error: describe(error) });
  }
  const sizes = copies[0].superblock ? [copies[0].superblock.blockSize] : blockSizes();
  let slot1: { slot: number; superblock?: Superblock; error?: string } = { slot: 1, error: 'not found' };
  for (const size of sizes) {
    if (size + SUPERBLOCK_SIZE > image.sizeBytes) break;
    try {
      const superblock = decodeSuperblock(image.read(size, SUPERBLOCK_SIZE), 1);
      if (superblock.blockSize === size) {
        slot1 = { slot: 1, superblock };
        break;
      }
    } catch (error) {
      slot1 = { slot: 1, error: describe(error) };
    }
  }
  copies.push(slot1);
  const valid = copies.filter((copy) => copy.superblock !== undefined).sort((a, b) => b.superblock!.generation - a.superblock!.generation);
  for (const copy of copies) if (copy.error !== undefined) report.warnings.push(`superblock slot ${copy.slot}: ${copy.error}`);
  if (valid.length === 0) {
    report.errors.push('no valid superblock');
    return report;
  }
  const superblock = valid[0].superblock!;
  report.superblock = superblock;
  const blockSize = superblock.blockSize;
  if (superblock.blockCount * blockSize > image.sizeBytes) {
    report.errors.push(`superblock: ${superblock.blockCount} blocks do not fit an image of ${image.sizeBytes} bytes`);
    return report;
  }

  // Index: checkpoint, then WAL replay.
  const index = new Map<string, StoredValue>();
  const visitor: RecordVisitor = {
    put: (key, _isString, value) => {
      index.set(Buffer.from(key).toString('latin1'), value.kind === 'inline' ? { kind: 'inline', bytes: Uint8Array.prototype.slice.call(value.bytes) } : value);
    },
    delete: (key) => {
      index.delete(Buffer.from(key).toString('latin1'));
    },
  };
  try {
    if (superblock.checkpointExtents.length > 0) {
      const blocks: number[] = [];
      for (const extent of superblock.checkpointExtents) for (let i = 0; i < extent.blockCount; i++) blocks.push(extent.startBlock + i);
      const payload = new Uint8Array(superblock.checkpointByteLength);
      let offset = 0;
      blocks.forEach((block, i) => {
        const bytes = image.read(block * blockSize, blockSize);
        const header = decodeFrameBlock('checkpoint', bytes, block);
        if (header.sequence !== superblock.checkpointSeq || header.storeTag !== superblock.storeTag || header.blockIndex !== i || header.blockCount !== blocks.length) {
          throw new FormatError('checkpoint', `block holds ${header.blockIndex}/${header.blockCount} of checkpoint ${header.sequence}`, block);
        }
        const part = frameBlockPayload(bytes, header);
        if (offset + part.length > payload.length) throw new FormatError('checkpoint', 'longer than the superblock says', block);
        payload.set(part, offset);
        offset += part.length;
      });
      if (offset !== payload.length) throw new FormatError('checkpoint', `${offset} bytes, superblock says ${payload.length}`, blocks[0]);
      readCheckpointPayload(payload, visitor, blocks[0], blockSize);
    }
    const region = image.read(superblock.walStartBlock * blockSize, superblock.walBlockCount * blockSize);
    const scan = scanWal(
      { bytes: Uint8Array.prototype.slice.call(region), blockSize, startBlock: superblock.walStartBlock, storeTag: superblock.storeTag },
      superblock.walReplayBlock,
      superblock.checkpointSeq + 1,
    );
    report.tornTail = scan.tornReason;
    // Replay. Commits written after the last one known durable may lack
    // their extent data (the crash came before their fdatasync): a commit
    // whose live extent value fails its checksum ends the log, as in
    // recovery. Values such a commit superseded are not checked: their
    // blocks may already be trimmed.
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
          report.tornTail = `commit ${commits[commit].sequence}: extent data of ${JSON.stringify(key)} never reached the disk`;
          changed = true;
        }
      }
    }
    for (let i = 0; i < keep; i++) {
      for (const { key, value } of decoded[i]) {
        if (value === undefined) index.delete(key);
        else index.set(key, value.kind === 'inline' ? { kind: 'inline', bytes: Uint8Array.prototype.slice.call(value.bytes) } : value);
      }
      report.walCommits++;
    }
  } catch (error) {
    report.errors.push(describe(error));
    return report;
  }

  // References: in the data region, and no block twice.
  const references: { extent: Extent; owner: string }[] = superblock.checkpointExtents.map((extent) => ({ extent, owner: 'checkpoint' }));
  for (const [key, value] of index) {
    if (value.kind !== 'extents') continue;
    report.extentValues++;
    for (const extent of value.extents) references.push({ extent, owner: `key ${JSON.stringify(key.slice(0, 40))}` });
    if (!extentValueIntact(image, value, blockSize)) report.errors.push(`data: value of key ${JSON.stringify(key.slice(0, 40))} (block ${value.extents[0].startBlock}) fails its checksum`);
  }
  references.sort((a, b) => a.extent.startBlock - b.extent.startBlock);
  let end = superblock.dataStartBlock;
  let endOwner = 'the WAL';
  for (const { extent, owner } of references) {
    if (extent.startBlock < superblock.dataStartBlock || extent.startBlock + extent.blockCount > superblock.blockCount) {
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
  return report;
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

function blockSizes(): number[] {
  const sizes: number[] = [];
  for (let size = BLOCK_SIZE_MIN; size <= BLOCK_SIZE_MAX; size *= 2) sizes.push(size);
  return sizes;
}
