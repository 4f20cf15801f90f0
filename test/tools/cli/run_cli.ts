// Runs the `ringstore` command line (dist/tools/cli.js) as a user would, in
// a child process, and collects its exit status and output. Not a test file.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const CLI = new URL('../../../tools/cli.js', import.meta.url).pathname;
const execFileAsync = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `nodeArgs` go to node before the CLI's path (`--import` a fault of a test's); `env` is added to the environment. */
export async function runCli(args: string[], options: { cwd?: string; nodeArgs?: string[]; env?: Record<string, string> } = {}): Promise<CliResult> {
  try {
    const env = options.env === undefined ? undefined : { ...process.env, ...options.env };
    const { stdout, stderr } = await execFileAsync(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], { cwd: options.cwd, env, encoding: 'utf8', maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as CliResult;
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
