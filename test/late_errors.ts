// Loaded into every process that runs test files (.mocharc.json `require`):
// records each error that reaches Node as uncaught — an exception no code
// caught, a rejection no code handled — in the file run_mocha.ts names,
// whenever it comes, one JSON line each (LateErrorRecord).
//
// Why: in parallel mode mocha reports an exception raised while a test runs
// but drops one raised after a file's tests ended (a store's background work
// failing late, say): `npm test` exited 0 (found by a review). And a
// rejection no code handles is dropped in serial mode as in parallel: mocha's
// runner takes Node's `unhandledRejection` event and re-emits it on `process`
// with its own listener removed, where nothing listens.
//
// How, changing nothing of what Node or mocha do with the error:
// - exceptions through `uncaughtExceptionMonitor` — so a test that expects an
//   uncaught exception must raise it in a child process (as
//   io_observer.test.ts does);
// - rejections by watching `process.emit` for `unhandledRejection` (a
//   listener would not do: mocha's worker removes every listener of that
//   event after each file) and for `rejectionHandled`, which Node emits when
//   a rejection it reported gets a handler after all. A test may well await
//   a rejected promise late (`const p = put(); await other; await
//   assert.rejects(p)`): that is no error, so a rejection is recorded as
//   unhandled and, if a handler comes, as handled; run_mocha.ts counts only
//   those never handled. A process that ends in between (a worker the pool
//   stops) leaves the rejection unhandled: it was.
import { appendFileSync } from 'node:fs';

/** One line of the errors file. `id` pairs a rejection's two records within one process. */
export interface LateErrorRecord {
  pid: number;
  kind: 'uncaught exception' | 'unhandled rejection' | 'rejection handled';
  id: number;
  text: string;
}

/** Where run_mocha.ts wants the errors; unset when mocha runs on its own (npx mocha). */
const errorsFile = process.env.RINGSTORE_TEST_ERRORS_FILE;

function describeError(error: unknown): string {
  return error instanceof Error ? (error.stack ?? String(error)) : String(error);
}

function record(kind: LateErrorRecord['kind'], id: number, text: string): void {
  const line: LateErrorRecord = { pid: process.pid, kind, id, text };
  // One write() a record: O_APPEND keeps the lines of several processes whole.
  appendFileSync(errorsFile!, `${JSON.stringify(line)}\n`);
}

if (errorsFile !== undefined && errorsFile !== '') {
  let nextId = 1;
  process.on('uncaughtExceptionMonitor', (error: unknown, origin: string) => {
    // A rejection Node turns into an exception (no listener of it at all)
    // was recorded as a rejection when Node emitted it.
    if (origin === 'unhandledRejection') return;
    record('uncaught exception', nextId++, describeError(error));
  });
  // Mocha re-emits the event with the same promise: one record a promise.
  const rejectionIds = new WeakMap<Promise<unknown>, number>();
  const emit = process.emit;
  process.emit = function watchedEmit(this: NodeJS.Process, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'unhandledRejection') {
      const promise = args[1] as Promise<unknown>;
      if (!rejectionIds.has(promise)) {
        const id = nextId++;
        rejectionIds.set(promise, id);
        record('unhandled rejection', id, describeError(args[0]));
      }
    } else if (event === 'rejectionHandled') {
      const promise = args[0] as Promise<unknown>;
      const id = rejectionIds.get(promise);
      if (id !== undefined) {
        rejectionIds.delete(promise);
        record('rejection handled', id, '');
      }
    }
    return (emit as (event: string | symbol, ...args: unknown[]) => boolean).call(this, event, ...args);
  } as typeof process.emit;
}
