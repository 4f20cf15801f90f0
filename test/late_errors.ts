// Loaded into every process that runs test files (.mocharc.json `require`):
// records each error that reaches Node as uncaught — an exception no code
// caught, a rejection no code handled — in the file run_mocha.ts names,
// whenever it comes. In parallel mode mocha reports one raised while a test
// runs, but drops one raised after a file's tests ended (a store's
// background work failing late, say): `npm test` exited 0 (found by a
// review). A monitor: it changes nothing of what Node or mocha do with the
// error — so a test that expects an uncaught exception must raise it in a
// child process (as io_observer.test.ts does). Not recorded: a rejection no
// code handled, which mocha re-emits on `process` and then drops, in serial
// mode as in parallel.
import { appendFileSync } from 'node:fs';

/** Where run_mocha.ts wants the errors; unset when mocha runs on its own (npx mocha). */
const errorsFile = process.env.RINGSTORE_TEST_ERRORS_FILE;

if (errorsFile !== undefined && errorsFile !== '') {
  process.on('uncaughtExceptionMonitor', (error: unknown, origin: string) => {
    const text = error instanceof Error ? (error.stack ?? String(error)) : String(error);
    appendFileSync(errorsFile, `pid ${process.pid}, ${origin}: ${text}\n\n`);
  });
}
