// Loaded into every process that runs test files (.mocharc.json `require`):
// records each error that reaches Node as uncaught — an exception no code
// caught, a rejection no code handled — in the file run_mocha.ts names,
// whenever it comes, one JSON line each (LateErrorRecord, late_error_record.ts).
//
// Why: in parallel mode mocha reports an exception raised while a test runs
// but drops one raised after a file's tests ended (a store's background work
// failing late, say): `npm test` exited 0 (found by a review). And a
// rejection no code handles is dropped in serial mode as in parallel: mocha's
// runner takes Node's `unhandledRejection` event and re-emits it on `process`
// with its own listener removed, where nothing listens.
//
// How, changing nothing of what Node or mocha do with the error:
// - exceptions through `uncaughtExceptionMonitor`;
// - rejections by watching `process.emit` for `unhandledRejection` (a
//   listener would not do: mocha's worker removes every listener of that
//   event after each file, and a worker's second file went unwatched) and
//   for `rejectionHandled`, which Node emits when a rejection it reported
//   gets a handler after all. A test may well await a rejected promise late
//   (`const p = put(); await other; await assert.rejects(p)`): that is no
//   error, so a rejection is recorded as unhandled and, if a handler comes,
//   as handled; run_mocha.ts counts only those never handled. A process
//   that ends in between (a worker the pool stops) leaves the rejection
//   unhandled: it was.
//
// So a test that expects an uncaught exception or an unhandled rejection
// must raise it in a child process (as io_observer.test.ts does); and a
// test that runs mocha itself with this file must give it a
// RINGSTORE_TEST_ERRORS_FILE of its own (or go through run_mocha.ts, as
// test_runner.test.ts does), or its records count against this run. Not
// watched: a parallel worker's last file once the pool has stopped the
// worker, shortly after its tests end.
import { appendFileSync } from 'node:fs';
import { inspect } from 'node:util';

import { type LateErrorRecord, RECORD_TEXT_CHARS_MAX } from './late_error_record.js';

/** Where run_mocha.ts wants the errors; unset when mocha runs on its own (npx mocha). */
const errorsFile = process.env.RINGSTORE_TEST_ERRORS_FILE;

/** The error as text, whatever it is: this runs inside process.emit, and must not throw (found by a review: a reason of no prototype did). */
function describeError(error: unknown): string {
  let text: string;
  try {
    text = error instanceof Error && typeof error.stack === 'string' ? error.stack : inspect(error, { depth: 2 });
  } catch {
    try {
      text = inspect(error, { depth: 2 });
    } catch {
      text = `(an error that cannot be shown: ${typeof error})`;
    }
  }
  return text.length > RECORD_TEXT_CHARS_MAX ? `${text.slice(0, RECORD_TEXT_CHARS_MAX)} … (${text.length - RECORD_TEXT_CHARS_MAX} more characters)` : text;
}

function record(kind: LateErrorRecord['kind'], id: number, text: string): void {
  const line: LateErrorRecord = { pid: process.pid, kind, id, text };
  // One write() a record: O_APPEND keeps the lines of several processes whole.
  appendFileSync(errorsFile!, `${JSON.stringify(line)}\n`);
}

if (errorsFile !== undefined && errorsFile !== '') {
  let nextId = 1;
  /** Reasons recorded as unhandled rejections (objects only: a WeakSet holds no primitive). */
  const recordedReasons = new WeakSet<object>();
  const isObject = (value: unknown): value is object => (typeof value === 'object' && value !== null) || typeof value === 'function';
  process.on('uncaughtExceptionMonitor', (error: unknown, origin: string) => {
    // A rejection Node turned into an exception (no listener of it at all)
    // after emitting it was recorded as a rejection then. Under
    // --unhandled-rejections=strict it raises the exception first: then it
    // is recorded here (found by a review: it was lost).
    if (origin === 'unhandledRejection' && isObject(error) && recordedReasons.has(error)) return;
    record('uncaught exception', nextId++, describeError(error));
  });
  // Mocha re-emits the event with the same promise: one record a promise.
  const rejectionIds = new WeakMap<object, number>();
  const emit = process.emit;
  process.emit = function watchedEmit(this: NodeJS.Process, event: string | symbol, ...args: unknown[]): boolean {
    // Watching must never change what the event does: whatever the arguments, the event goes on.
    try {
      if (event === 'unhandledRejection') {
        const [reason, promise] = args;
        if (!isObject(promise) || !rejectionIds.has(promise)) {
          const id = nextId++;
          if (isObject(promise)) rejectionIds.set(promise, id);
          if (isObject(reason)) recordedReasons.add(reason);
          record('unhandled rejection', id, describeError(reason));
        }
      } else if (event === 'rejectionHandled') {
        const [promise] = args;
        const id = isObject(promise) ? rejectionIds.get(promise) : undefined;
        if (id !== undefined) {
          rejectionIds.delete(promise as object);
          record('rejection handled', id, '');
        }
      }
    } catch (error) {
      try {
        record('uncaught exception', nextId++, `late_errors.ts could not record a '${String(event)}' event: ${describeError(error)}`);
      } catch {
        // Nothing more can be done here; the event itself goes on.
      }
    }
    return (emit as (event: string | symbol, ...args: unknown[]) => boolean).call(this, event, ...args);
  } as typeof process.emit;
}
