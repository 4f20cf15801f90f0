// The targets of ringstore as a store, and whether a run met them. Each
// compares ringstore with a peer or with fio measured in the same run (the
// machine is too noisy for absolute numbers), except reopen, which has an
// absolute bound.
import type { PhaseId, StoreMeasurement } from './store_workloads.js';

/** 64 durable writers: group commit beats the best peer's own durable path by this factor. */
export const WRITERS_VS_BEST_PEER_MIN = 3;
/** 64 durable writers: ... and the best peer driven by an app-level batcher by this factor. */
export const WRITERS_VS_BEST_BATCHED_PEER_MIN = 2;
/** One durable writer: p50 at most this multiple of fio's 4 KiB write p50 + fdatasync p50. */
export const ONE_WRITER_P50_VS_FIO_MAX = 1.5;
/** 1 MiB durable blobs: at least this multiple of lmdb-js's bandwidth. */
export const BLOB_WRITE_VS_LMDB_MIN = 3;
/** 1 MiB durable blobs: at least this fraction of fio's 1 MiB sequential direct write QD8 bandwidth. */
export const BLOB_WRITE_VS_FIO_MIN = 0.7;
/** Random gets, ordered scan and bulk load: at least lmdb-js's rate. */
export const READ_AND_LOAD_VS_LMDB_MIN = 1;
/** ringstore/level's RingLevel: puts and gets at least this fraction of the BlockStore API's in the same run (issue 11). */
export const LEVEL_VS_BLOCK_STORE_MIN = 0.8;
/** Opening a store of 1 M keys after a clean close. */
export const REOPEN_MS_MAX = 2_000;

export const OWN_PATH_PEER_IDS = ['lmdb', 'classic-level', 'better-sqlite3'] as const;
export const BATCHED_PEER_IDS = ['classic-level+batcher', 'better-sqlite3+batcher'] as const;
const RINGSTORE_ID = 'ringstore';
const RING_LEVEL_ID = 'ringstore-level';
const LMDB_ID = 'lmdb';

/** fio's numbers the targets use. */
export interface FioReference {
  /** 4 KiB direct write + fdatasync, QD1: write p50 + sync p50 (fio times them separately). */
  writeSyncP50Us: number | undefined;
  /** 1 MiB sequential direct write, QD8. */
  seqWriteMiBps: number | undefined;
}

export interface StoreTargetCheck {
  target: string;
  /** What the bound was derived from. */
  reference: string;
  actual: number;
  bound: number;
  unit: string;
  /** 'min': actual must be ≥ bound; 'max': actual must be ≤ bound, or < when `strict`. */
  kind: 'min' | 'max';
  /** For 'max' only: the bound itself fails (reopen). */
  strict?: boolean;
  met: boolean;
}

type Lookup = (phaseId: PhaseId, contenderId: string) => StoreMeasurement | undefined;

/** Every target whose measurements ran (--only skips the others). */
export function checkStoreTargets(lookup: Lookup, fio: FioReference, labelOf: (contenderId: string) => string): StoreTargetCheck[] {
  const checks: StoreTargetCheck[] = [];
  const ringstore = (phaseId: PhaseId): StoreMeasurement | undefined => lookup(phaseId, RINGSTORE_ID);
  const best = (phaseId: PhaseId, ids: readonly string[]): { id: string; measurement: StoreMeasurement } | undefined => {
    let found: { id: string; measurement: StoreMeasurement } | undefined;
    for (const id of ids) {
      const measurement = lookup(phaseId, id);
      if (measurement !== undefined && (found === undefined || measurement.opsPerSecond > found.measurement.opsPerSecond)) found = { id, measurement };
    }
    return found;
  };
  const minimum = (target: string, reference: string, actual: number, bound: number, unit: string): void => {
    checks.push({ target, reference, actual, bound, unit, kind: 'min', met: actual >= bound });
  };

  const writers = ringstore('writers-64');
  const bestOwn = best('writers-64', OWN_PATH_PEER_IDS);
  if (writers !== undefined && bestOwn !== undefined) {
    minimum(
      `64-writer durable puts ≥ ${WRITERS_VS_BEST_PEER_MIN} × best peer's own durable path`,
      labelOf(bestOwn.id),
      writers.opsPerSecond,
      WRITERS_VS_BEST_PEER_MIN * bestOwn.measurement.opsPerSecond,
      'puts/s',
    );
  }
  const bestBatched = best('writers-64', BATCHED_PEER_IDS);
  if (writers !== undefined && bestBatched !== undefined) {
    minimum(
      `64-writer durable puts ≥ ${WRITERS_VS_BEST_BATCHED_PEER_MIN} × best peer with an app-level batcher`,
      labelOf(bestBatched.id),
      writers.opsPerSecond,
      WRITERS_VS_BEST_BATCHED_PEER_MIN * bestBatched.measurement.opsPerSecond,
      'puts/s',
    );
  }
  const oneWriter = ringstore('one-writer');
  if (oneWriter?.latencyUs !== undefined && fio.writeSyncP50Us !== undefined) {
    const bound = ONE_WRITER_P50_VS_FIO_MAX * fio.writeSyncP50Us;
    checks.push({
      target: `1 durable writer p50 ≤ ${ONE_WRITER_P50_VS_FIO_MAX} × fio 4 KiB write+fdatasync p50`,
      reference: `fio write p50 + sync p50 = ${fio.writeSyncP50Us.toFixed(1)} µs`,
      actual: oneWriter.latencyUs.p50,
      bound,
      unit: 'µs',
      kind: 'max',
      met: oneWriter.latencyUs.p50 <= bound,
    });
  }
  const blobWrite = ringstore('blob-write');
  const lmdbBlobWrite = lookup('blob-write', LMDB_ID);
  if (blobWrite?.bandwidthMiBps !== undefined && lmdbBlobWrite?.bandwidthMiBps !== undefined) {
    minimum(`1 MiB durable blobs ≥ ${BLOB_WRITE_VS_LMDB_MIN} × lmdb-js`, labelOf(LMDB_ID), blobWrite.bandwidthMiBps, BLOB_WRITE_VS_LMDB_MIN * lmdbBlobWrite.bandwidthMiBps, 'MiB/s');
  }
  if (blobWrite?.bandwidthMiBps !== undefined && fio.seqWriteMiBps !== undefined) {
    minimum(
      `1 MiB durable blobs ≥ ${BLOB_WRITE_VS_FIO_MIN} × fio 1 MiB seq direct write QD8`,
      `fio ${fio.seqWriteMiBps.toFixed(0)} MiB/s`,
      blobWrite.bandwidthMiBps,
      BLOB_WRITE_VS_FIO_MIN * fio.seqWriteMiBps,
      'MiB/s',
    );
  }
  const againstLmdb: [PhaseId, string, string][] = [
    ['random-get', "random gets ≥ lmdb-js's sync get", 'gets/s'],
    ['scan', 'ordered scan ≥ lmdb-js', 'keys/s'],
    ['bulk-load', 'bulk load ≥ lmdb-js', 'puts/s'],
  ];
  for (const [phaseId, target, unit] of againstLmdb) {
    const ours = ringstore(phaseId);
    const theirs = lookup(phaseId, LMDB_ID);
    if (ours !== undefined && theirs !== undefined) minimum(target, labelOf(LMDB_ID), ours.opsPerSecond, READ_AND_LOAD_VS_LMDB_MIN * theirs.opsPerSecond, unit);
  }
  const throughLevel: [PhaseId, string, string][] = [
    ['one-writer', 'one durable writer', 'puts/s'],
    ['writers-64', '64 durable writers', 'puts/s'],
    ['random-get', 'random gets', 'gets/s'],
  ];
  for (const [phaseId, what, unit] of throughLevel) {
    const direct = ringstore(phaseId);
    const level = lookup(phaseId, RING_LEVEL_ID);
    if (direct !== undefined && level !== undefined) {
      minimum(`${what} through ringstore/level ≥ ${LEVEL_VS_BLOCK_STORE_MIN} × BlockStore`, labelOf(RINGSTORE_ID), level.opsPerSecond, LEVEL_VS_BLOCK_STORE_MIN * direct.opsPerSecond, unit);
    }
  }
  const reopen = ringstore('reopen');
  if (reopen !== undefined) {
    const actual = reopen.elapsedSeconds * 1000;
    checks.push({ target: `reopen of 1 M keys < ${REOPEN_MS_MAX} ms`, reference: 'absolute', actual, bound: REOPEN_MS_MAX, unit: 'ms', kind: 'max', strict: true, met: actual < REOPEN_MS_MAX });
  }
  return checks;
}
