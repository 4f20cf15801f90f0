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

export async function runCli(args: string[], options: { cwd?: string } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], { cwd: options.cwd, encoding: 'utf8', maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as CliResult;
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
