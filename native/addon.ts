// The only module that loads the native addon. Everything else imports the
// typed surface below, never the .node file, so the addon's shape is stated
// (and checked by the compiler) in exactly one place.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeGeometry {
  isBlockDevice: boolean;
  sizeBytes: number;
  logicalBlockSize: number;
  physicalBlockSize: number;
  dioMemAlign: number;
  dioOffsetAlign: number;
}

export interface NativeOpenResult extends NativeGeometry {
  fd: number;
}

export interface NativeHistogram {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export interface NativeActorStats {
  submitted: number;
  completed: number;
  sqesSubmitted: number;
  batches: number;
  waits: number;
  inFlight: number;
  continuations: number;
  directWrites: number;
  directReads: number;
  directContinuations: number;
  queuedUs: NativeHistogram;
  kernelUs: NativeHistogram;
  actorSpin: NativeSpinState;
  completionSpin: NativeSpinState;
  loneReadRoute: { direct: boolean; probeCount: number; actorWinCount: number };
}

export interface NativeSpinState {
  adaptive: boolean;
  spinning: boolean;
  probeCount: number;
  spinWinCount: number;
}

export interface NativeActorSpec {
  backend: 'io_uring' | 'threads';
  entries: number;
  batchSize: number;
  spinUs: number;
  /** 1: spin (spinUs) only while the actor's SpinPolicy finds it pays; 0 or absent: always. */
  spinAdaptive?: number;
  threadCount: number;
  /** Test-only fault injection; 0 = off. */
  shortTransferEvery: number;
}

export interface NativeRingClient {
  readonly actorId: number;
  readonly backend: 'io_uring' | 'threads';
  submit(slot: number, kind: number, fd: number, offset: number, buffer: ArrayBufferView, directAlignment: number): void;
  submitVector(slot: number, kind: number, fd: number, offset: number, buffers: ArrayBufferView[], directAlignment: number): void;
  submitRange(slot: number, kind: number, fd: number, offset: number, length: number): void;
  holdWakes(held: boolean): void;
  stats(): NativeActorStats;
  close(): void;
}

export interface NativeConstants {
  OP_READ: number;
  OP_WRITE: number;
  OP_READV: number;
  OP_WRITEV: number;
  OP_FSYNC: number;
  OP_FDATASYNC: number;
  OP_WRITE_AND_SYNC: number;
  OP_PUNCH_HOLE: number;
  OP_DISCARD: number;
  OP_WRITEV_DSYNC: number;
  STAGE_MAIN: number;
  STAGE_SYNC: number;
  COMPLETION_WORDS: number;
  CLIENT_SLOT_COUNT: number;
  IOV_COUNT_MAX: number;
  TRANSFER_SIZE_MAX: number;
  RING_ENTRIES_MIN: number;
  RING_ENTRIES_MAX: number;
  SPIN_US_MAX: number;
  AUTO_SPIN_WINDOW_US: number;
  THREAD_COUNT_MAX: number;
  SHORT_TRANSFER_EVERY_MAX: number;
  ALIGNMENT_MAX: number;
  O_RDONLY: number;
  O_RDWR: number;
  O_CREAT: number;
  O_EXCL: number;
  O_DIRECT: number;
  O_DSYNC: number;
}

export interface NativeAddon {
  NativeRingClient: new (
    spec: number | NativeActorSpec,
    onCompletions: (count: number) => void,
    completions: Int32Array,
    clientOptions: { completionSpinUs: number; completionSpinAdaptive?: number; directDsync?: number; directReads?: number },
  ) => NativeRingClient;
  /** With `unnamed`, `path` is a directory and the file is made there without a name (O_TMPFILE). */
  openFile(path: string, flags: number, sizeBytes: number, unnamed: boolean): Promise<NativeOpenResult>;
  /** fsync(2) of the directory `path`, opened and closed on the thread pool. */
  syncDirectory(path: string): Promise<void>;
  /** Gives the open file `fd` the name `path` (linkat); EEXIST if the name is taken. */
  linkFile(fd: number, path: string): Promise<void>;
  statFile(fd: number): Promise<NativeGeometry>;
  closeFile(fd: number): Promise<void>;
  blkDiscard(fd: number, offset: number, length: number): Promise<void>;
  lockExclusive(fd: number): number;
  lockShared(fd: number): number;
  allocAligned(sizeBytes: number, alignment: number): Buffer;
  bufferAddressModulo(view: ArrayBufferView, alignment: number): number;
  crc32c(view: Uint8Array, seed: number): number;
  /**
   * Tests only: runs the adaptive spin's policy for stepCount steps against a
   * model; returns the decision each step ran under.
   */
  spinPolicyRun(
    kind: 'actor' | 'client' | 'lone-reads',
    stepCount: number,
    observe: (spinning: boolean, stepIndex: number) => [completions: number, busyNs: number],
  ): boolean[];
  constants: NativeConstants;
}

const require = createRequire(import.meta.url);
// The addon of this platform: node-gyp-build takes the package's own build
// (build/Release/, made by `npm install` from a clone or where no prebuilt
// binary fits) or else the prebuilt binary shipped in the npm package
// (prebuilds/linux-x64, linux-arm64; tools/build_prebuilds.sh). Tests only:
// RINGSTORE_ADDON_PATH (absolute) loads another build of the same sources —
// `npm run test:asan` points it at its AddressSanitizer build (build/asan/).
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const loadBinding = require('node-gyp-build') as (root: string) => unknown;
export const addon: NativeAddon = (process.env.RINGSTORE_ADDON_PATH ? require(process.env.RINGSTORE_ADDON_PATH) : loadBinding(PACKAGE_ROOT)) as NativeAddon;
export const constants: Readonly<NativeConstants> = Object.freeze({ ...addon.constants });
