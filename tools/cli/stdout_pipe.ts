// The CLI's standard output as a pipe that may close under it. Node ignores
// SIGPIPE, so a reader that goes away (`ringstore scan PATH | head -1`)
// makes stdout emit 'error' (EPIPE), and without a listener that error
// crashed the process with a stack trace and exit status 1, which the CLI
// keeps for a missing key or damage (found by a review). Here the first
// such error is kept: writeStdout() throws it, so a command stops as any
// failing one does (its store closed, one line `ringstore: EPIPE: …`, exit
// 2), and stdoutFailure() gives it to the entry point for output written
// with console.log, whose errors only reach the listener.

let failure: Error | undefined;
let guarded = false;

/** Listens for stdout's errors (idempotent); the CLI calls it before it writes anything. */
export function guardStdout(): void {
  if (guarded) return;
  guarded = true;
  process.stdout.on('error', (error: Error) => {
    failure ??= error;
    // Wakes a writeStdout() waiting for room that will never come.
    process.stdout.emit('drain');
  });
}

/** The first error stdout reported, if any. */
export function stdoutFailure(): Error | undefined {
  return failure;
}

/**
 * Writes `chunk` to stdout, waiting while its buffer is full (so a long
 * scan into a slow reader does not pile up in memory); rejects with the
 * pipe's error once it has one.
 */
export async function writeStdout(chunk: string | Uint8Array): Promise<void> {
  guardStdout();
  if (failure !== undefined) throw failure;
  if (!process.stdout.write(chunk)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
  if (failure !== undefined) throw failure;
}
