// ringstore/lab: the durability lab — write traces, the crash, corruption
// and IO-fault explorers, the oracle, reproducers and the independent fsck —
// for testing the store and applications' own use of it (docs/crash-lab.md).
export { WriteTrace } from './tools/lab/write_trace.js';
export type { TraceOperation, TraceEvent, TraceOperationKind } from './tools/lab/write_trace.js';
export { crashPointAt, crashPoints, buildImage, SectorFate } from './tools/lab/crash_states.js';
export type { CrashPoint, PendingChoice, PendingPart } from './tools/lab/crash_states.js';
export { exploreCrashStates } from './tools/lab/crash_explorer.js';
export type { ExplorationOptions, ExplorationReport, Violation } from './tools/lab/crash_explorer.js';
export { planStates, STRATEGIES } from './tools/lab/crash_plan.js';
export type { Strategy, CrashState } from './tools/lab/crash_plan.js';
export { StateChecker } from './tools/lab/state_checker.js';
export { judgeRecovered, keyId, sameValue } from './tools/lab/oracle.js';
export type { WorkloadOperation, WorkloadWrite } from './tools/lab/oracle.js';
export { LabStore } from './tools/lab/lab_store.js';
export type { LabLevelOptions, LabReopenOptions } from './tools/lab/lab_store.js';
export { runWorkload, loadWorkloadModule, DEFAULT_WORKLOAD_STORE } from './tools/lab/workload.js';
export type { Workload, WorkloadStoreOptions, TracedWorkload } from './tools/lab/workload.js';
export { saveReproducer, replayReproducer } from './tools/lab/reproducer.js';
export type { ReplayResult } from './tools/lab/reproducer.js';
export { exploreCorruption } from './tools/lab/corruption_explorer.js';
export type { CorruptionReport, Damage } from './tools/lab/corruption_explorer.js';
export { runBuiltinWorkload, builtinWorkload } from './tools/lab/builtin_workload.js';
export { fsckImage, memoryImage } from './tools/fsck.js';
export type { FsckProgress, FsckReport, ImageReader } from './tools/fsck.js';
export { exploreIoFaults, runFaultPlan, FAULT_KINDS, FAULT_TYPES } from './tools/lab/fault_explorer.js';
export type { FaultPlan, FaultReport, FaultKind, FaultType, FaultTypeCounts } from './tools/lab/fault_explorer.js';
