// `npm test`: runs mocha (parallel mode, .mocharc.json) and fails the run
// where mocha's own exit status would not: mocha ended without its summary,
// or an error reached Node as uncaught in a test process (late_errors.ts),
// which parallel mode drops when it comes after a file's tests ended (found
// by a review: `npm test` exited 0 with no summary, or with the error lost).
// Arguments are passed to mocha.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';

import { type LateErrorRecord, RECORD_TEXT_CHARS_MAX } from './late_error_record.js';

/** Mocha's closing summary: "  1722 passing (6m)". */
const SUMMARY_LINE = /^ +\d+ passing/m;
/** A terminal's colour code. */
// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE = /\x1b\[[0-9;]*m/g;

const require = createRequire(import.meta.url);
const directory = mkdtempSync(join(tmpdir(), 'ringstore-npm-test-'));
const errorsFile = join(directory, 'late-errors.jsonl');

const mochaArguments = process.argv.slice(2);
// The summary looked for is the spec reporter's, which .mocharc.json
// implies: with any argument (another reporter, another config) it is not.
const summaryExpected = mochaArguments.length === 0;
const child = spawn(process.execPath, [require.resolve('mocha/bin/mocha.js'), ...mochaArguments], {
  stdio: ['inherit', 'pipe', 'inherit'],
  env: { ...process.env, RINGSTORE_TEST_ERRORS_FILE: errorsFile },
});
// Ctrl-C reaches both processes; a signal sent to this one alone (npm
// forwarding it) must reach mocha too, and this one exits when mocha has,
// as interrupted (mocha's parallel mode exits 0 on SIGINT).
let interruptedBy: NodeJS.Signals | undefined;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    interruptedBy ??= signal;
    child.kill(signal);
  });
}
// The summary is near the end: keep what the last lines need, not all of it.
let tail = '';
child.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString('utf8')).slice(-64 * 1024);
});
/** The most errors printed in full; the rest are counted. */
const ERRORS_PRINTED_MAX = 20;

function isRecord(value: unknown): value is LateErrorRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record.pid === 'number' &&
    typeof record.id === 'number' &&
    typeof record.text === 'string' &&
    (record.kind === 'uncaught exception' || record.kind === 'unhandled rejection' || record.kind === 'rejection handled')
  );
}

/** The records of late_errors.ts that are errors: every uncaught exception, and the rejections no handler came for. */
function errorsNeverHandled(text: string): LateErrorRecord[] {
  const records = text
    .split('\n')
    .filter((line) => line !== '')
    .map((line): LateErrorRecord => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        // A line cut short (a process killed in its write): still an error.
      }
      if (isRecord(parsed)) return parsed;
      return { pid: 0, kind: 'uncaught exception', id: 0, text: `(a record that does not parse) ${line.slice(0, RECORD_TEXT_CHARS_MAX)}` };
    });
  const handled = new Set(records.filter((entry) => entry.kind === 'rejection handled').map((entry) => `${entry.pid}:${entry.id}`));
  return records.filter((entry) => entry.kind === 'uncaught exception' || (entry.kind === 'unhandled rejection' && !handled.has(`${entry.pid}:${entry.id}`)));
}

child.once('close', (code, signal) => {
  let recorded = '';
  try {
    recorded = readFileSync(errorsFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  rmSync(directory, { recursive: true, force: true });
  const ending = interruptedBy ?? signal ?? undefined;
  if (ending !== undefined) {
    console.error(`npm test: interrupted by ${ending}`);
    process.exit(128 + constants.signals[ending]);
  }
  let status = code ?? 1;
  // Colour codes (mocha --color) between the indent and the count.
  if (status === 0 && summaryExpected && !SUMMARY_LINE.test(tail.replace(ANSI_ESCAPE, ''))) {
    console.error('npm test: FAILED: mocha ended without its summary (a test process ended the run early: see above)');
    status = 1;
  }
  const errors = errorsNeverHandled(recorded);
  if (errors.length > 0) {
    console.error(
      `npm test: FAILED: ${errors.length} error(s) reached Node as uncaught in a test process (mocha may not count them):\n\n` +
        errors
          .slice(0, ERRORS_PRINTED_MAX)
          .map((error) => `${error.pid > 0 ? `pid ${error.pid}` : 'a test process'}, ${error.kind}: ${error.text}`)
          .join('\n\n') +
        (errors.length > ERRORS_PRINTED_MAX ? `\n\n… and ${errors.length - ERRORS_PRINTED_MAX} more` : ''),
    );
    status = status === 0 ? 1 : status;
  }
  process.exit(status);
});
