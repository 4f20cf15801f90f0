// `ringstore bench store|io [OPTIONS]`: the benchmarks (`npm run bench`,
// `npm run bench:io`) from the command line, in a child process of their
// own (each parses its own options, `--help` included, and exits with its
// own status), with stdin, stdout and stderr passed through.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TOOLS_DIRECTORY = join(dirname(fileURLToPath(import.meta.url)), '..');
const BENCH_SCRIPTS = { store: 'bench_store.js', io: 'bench_io.js' } as const;

export const BENCH_USAGE = `  ringstore bench store|io [OPTIONS]
                           run a benchmark: the store against lmdb-js, classic-level and
                           better-sqlite3, or the IO layer against fio and fs.promises
                           (as npm run bench / bench:io; --help lists OPTIONS)`;

/** Runs `ringstore bench WHICH ARGS…`; resolves to the exit status. */
export function benchCommand(args: string[]): Promise<number> | number {
  const [which, ...rest] = args;
  if (which === undefined || which === '--help' || which === '-h') {
    (which === undefined ? console.error : console.log)(`usage:\n${BENCH_USAGE}`);
    return which === undefined ? 2 : 0;
  }
  if (!Object.hasOwn(BENCH_SCRIPTS, which)) {
    console.error(`ringstore: ERR_INVALID_ARG: unknown benchmark '${which}' (store or io)\nusage:\n${BENCH_USAGE}`);
    return 2;
  }
  const script = join(TOOLS_DIRECTORY, BENCH_SCRIPTS[which as keyof typeof BENCH_SCRIPTS]);
  return new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [script, ...rest], { stdio: 'inherit' });
    child.on('error', (error) => {
      console.error(`ringstore: ${(error as Error & { code?: string }).code ?? 'ERR_BENCH'}: ${error.message}`);
      resolve(2);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal === null ? 2 : 128 + 2)));
  });
}
