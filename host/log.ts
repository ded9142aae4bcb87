// One logger: results go to stdout, everything else (progress, logs, warnings) to stderr.
import cliProgress from 'cli-progress';

let quiet = false;
export function setQuiet(q: boolean): void {
  quiet = q;
}

export function log(msg: string): void {
  if (!quiet) process.stderr.write(msg + '\n');
}

export function warn(msg: string): void {
  process.stderr.write(`warning: ${msg}\n`);
}

export interface Progress {
  tick(n?: number, label?: string): void;
  done(): void;
}

// A progress bar on stderr when it is a terminal; a silent counter otherwise (CI logs stay readable).
export function progress(total: number, title: string): Progress {
  if (quiet || !process.stderr.isTTY) {
    return { tick() {}, done() {} };
  }
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${title} [{bar}] {value}/{total} {label}`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: '' });
  return {
    tick(n = 1, label = '') {
      bar.increment(n, { label });
    },
    done() {
      bar.stop();
    },
  };
}
