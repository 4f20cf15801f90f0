// Progress bars of the long CLI commands (dump, load, fsck, crash-test), on
// stderr, through cli-progress. Only on a terminal: when stderr is a file or
// a pipe (a script, a test, CI) nothing is drawn, so what a command prints
// there is the same whether it took a second or an hour.
import cliProgress from 'cli-progress';

/** A bar being drawn, or nothing (stderr is not a terminal). */
export interface Progress {
  /** Sets the work done so far, in the unit the bar was started with. */
  update(done: number): void;
  /** Raises the total (work discovered while running). */
  setTotal(total: number): void;
  /** Ends the bar (leaves it drawn at its last state). Idempotent. */
  stop(): void;
}

const SILENT: Progress = { update() {}, setTotal() {}, stop() {} };

/** Redraws at most this often: a bar costs nothing measurable beside the work it shows. */
const PROGRESS_REDRAW_MS_MIN = 100;

/**
 * Starts a bar labelled `label` over `total` units; `unit` 'bytes' shows
 * MiB, 'count' shows plain numbers.
 */
export function startProgress(label: string, total: number, unit: 'bytes' | 'count'): Progress {
  if (process.stderr.isTTY !== true) return SILENT;
  const shown = unit === 'bytes' ? '{doneMiB}/{totalMiB} MiB' : '{value}/{total}';
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% ${shown} {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      fps: 1000 / PROGRESS_REDRAW_MS_MIN,
    },
    cliProgress.Presets.shades_classic,
  );
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
  let totalNow = Math.max(total, 0);
  bar.start(totalNow, 0, { doneMiB: mib(0), totalMiB: mib(totalNow) });
  let stopped = false;
  return {
    update(done) {
      if (!stopped) bar.update(done, { doneMiB: mib(done), totalMiB: mib(totalNow) });
    },
    setTotal(next) {
      totalNow = next;
      if (!stopped) bar.setTotal(next);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
