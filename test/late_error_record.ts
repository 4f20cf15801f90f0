// The record late_errors.ts writes, one JSON line each, and run_mocha.ts
// reads: shared here so that the wrapper does not load late_errors.ts itself
// (whose loading starts the watching it does in test processes).

/** One line of the errors file. `id` pairs a rejection's two records within one process. */
export interface LateErrorRecord {
  pid: number;
  kind: 'uncaught exception' | 'unhandled rejection' | 'rejection handled';
  id: number;
  text: string;
}

/** The most of an error's text a record keeps: a test that throws a huge message still leaves a readable report. */
export const RECORD_TEXT_CHARS_MAX = 8192;
