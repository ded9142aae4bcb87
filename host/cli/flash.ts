// `edge-flash flash <image> --port P [--baud B]`: INFO, checks, upload with resume and a progress bar,
// VERIFY, COMMIT, RESET. Exit 0 only when the board has verified the image.
import type { Command } from 'commander';
import type { Client } from '../board/client.ts';
import { flash, type FlashResult } from '../board/commands.ts';
import { connectBoard, parseBaud } from '../board/connect.ts';
import { log, progress } from '../log.ts';
import { readImageFile } from './inspect.ts';

export function registerFlash(program: Command): void {
  program
    .command('flash')
    .description('write an image to a board over serial (resumes an interrupted upload), verify it, commit it and boot it')
    .argument('<image>', 'an edge-flash image')
    .requiredOption('--port <path>', 'serial port (see `edge-flash ports`), or the virtual board\'s pty')
    .option('--baud <rate>', 'baud rate', '115200')
    .option('--no-reset', 'commit without restarting the board into the new image')
    .option('--trace', 'hex dump of the wire on stderr')
    .action(async (path: string, o) => {
      const baud = parseBaud(o.baud);
      const bytes = readImageFile(path);
      const client = await connectBoard(o.port, baud, !!o.trace);
      try {
        const r = await flashWithProgress(client, bytes, { port: o.port, baud, trace: !!o.trace, reset: o.reset !== false });
        process.stdout.write(flashSummary(path, bytes, r, baud) + '\n');
      } finally {
        await client.close();
      }
    });
}

// flash() with the progress bar (bytes, rate, ETA) on stderr: the verb's and the demo's.
export async function flashWithProgress(client: Client, bytes: Uint8Array, o: { port: string; baud: number; trace: boolean; reset: boolean }): Promise<FlashResult> {
  let bar: ReturnType<typeof progress> | undefined, last = 0, first = -1;
  try {
    const r = await flash(client, bytes, {
      reset: o.reset, log,
      reconnect: () => connectBoard(o.port, o.baud, o.trace),
      onProgress: (n, total, t0) => {
        if (!bar) {
          bar = progress(total, 'flash');
          first = last = n;
          bar.tick(n, 'resumed');
          return;
        }
        const s = (performance.now() - t0) / 1000;
        const rate = s > 0 ? (n - first) / s : 0;
        bar.tick(n - last, `${(rate / 1024).toFixed(1)} KiB/s ETA ${rate > 0 ? ((total - n) / rate).toFixed(0) : '?'} s`);
        last = n;
      },
    });
    return r;
  } finally {
    bar?.done();
  }
}

export function flashSummary(path: string, bytes: Uint8Array, r: FlashResult, baud: number): string {
  const s = r.upload.ms / 1000, rate = (bytes.byteLength - r.upload.resumedAt) / Math.max(s, 1e-3);
  return `${path}: ${bytes.byteLength} bytes to ${r.board.board} slot ${r.slot}${r.upload.resumedAt ? ` (resumed at ${r.upload.resumedAt})` : ''} in ${s.toFixed(1)} s ` +
    `(${(rate / 1024).toFixed(1)} KiB/s, ${((100 * rate * 10) / baud).toFixed(0)} % of ${baud} baud), verified SHA-256 ${r.sha256.slice(0, 16)}` +
    `${r.booted ? ', booted' : ', committed (boots at the next reset)'}`;
}
