// `edge-flash flash <image> --port P [--baud B]`: INFO, checks, upload with resume and a progress bar,
// VERIFY, COMMIT, RESET. Exit 0 only when the board has verified the image. With --rom, a bare
// ESP32-family chip through its ROM bootloader instead (./flash-rom.ts).
import type { Command } from 'commander';
import type { Client } from '../board/client.ts';
import { flash, type FlashResult } from '../board/commands.ts';
import { boardBaud, connectBoard, parseBaud } from '../board/connect.ts';
import { boardById, type BoardProfile } from '../board/boards.ts';
import { log, progress } from '../log.ts';
import { UserError } from '../errors.ts';
import { flashRom } from './flash-rom.ts';
import { readImageFile, refuseModelFile } from './inspect.ts';
import { readImage } from '../image/read.ts';

export function registerFlash(program: Command): void {
  program
    .command('flash')
    .description('write an image to a board over serial (resumes an interrupted upload), verify it, commit it and boot it; ' +
      'with --rom, write firmware and/or an image to a bare ESP32, ESP32-S3 or ESP32-C3 through its ROM bootloader')
    .argument('[image]', 'an edge-flash image (with --rom: the same as --image)')
    .requiredOption('--port <path>', 'serial port (see `edge-flash ports`), or the virtual board\'s pty')
    .option('--baud <rate>', 'baud rate (default: the profile rate (serial.baud, `edge-flash boards`) of the board the image names, else 115200; with --rom: the rate switched to after the ROM\'s 115200, default 115200)')
    .option('--no-reset', 'commit without restarting the board into the new image')
    .option('--trace', 'hex dump of the wire on stderr (with --rom: esptool-js\'s messages)')
    .option('--json', 'one JSON object on stdout: sizes, time, rate, retries and the chunk sizes the upload used, SHA-256, slot')
    .option('--rom', 'through the chip\'s ROM bootloader (esptool-js): DTR/RTS auto-reset, chip checked against --board, MD5 of every region checked')
    .option('--board <name>', 'with --rom: the board (esp32, esp32s3, esp32c3, PSRAM variants): chip check, flash size, model slot offset')
    .option('--firmware <dir>', 'with --rom: an ESP-IDF build folder (DIR/build): the files and offsets of its flash_args; for esp32c3 also bare-metal or bare-metal-aot (the prebuilt firmware, no ESP-IDF), or a file of `firmware --bare-metal`')
    .option('--no-stub', 'with --rom: write through the ROM loader, without uploading esptool\'s flasher stub (slower; for a chip or emulator whose stub does not run)')
    .option('--image <image>', 'with --rom: an edge-flash image for the model slot (checked and fit-planned before anything is written)')
    .addHelpText('after', '\nWith --rom the chip must be in its bootloader: boards with a USB-UART bridge get there by the DTR/RTS\n' +
      'auto-reset; otherwise hold BOOT, tap EN (RST), release BOOT. --baud is the rate switched to after\n' +
      'the ROM\'s 115200 (460800 or 921600 on most bridges). Exit 0 only when every region\'s MD5 matched.\n' +
      'Example: edge-flash flash --rom --port /dev/ttyUSB0 --board esp32s3 --firmware fw/build --image kjv.efimg --baud 460800')
    .action(async (positional: string | undefined, o) => {
      if (o.rom) {
        const baud = parseBaud(o.baud);
        if (positional && o.image && positional !== o.image) throw new UserError(`flash --rom: two images given (${positional} and --image ${o.image})`);
        return flashRom({ port: o.port, board: o.board, firmware: o.firmware, image: o.image ?? positional, baud, reset: o.reset !== false, stub: o.stub !== false, trace: !!o.trace });
      }
      for (const [flag, v] of [['--board', o.board], ['--firmware', o.firmware], ['--image', o.image], ['--no-stub', o.stub === false ? true : undefined]] as const) {
        if (v !== undefined) throw new UserError(`flash: ${flag} goes with --rom (a board running the edge-flash runtime says what it is)`);
      }
      if (!positional) throw new UserError('flash: missing <image>', 'edge-flash flash IMAGE --port P; or --rom for a bare ESP32');
      const path = positional;
      if (o.baud !== undefined) parseBaud(o.baud);   // a bad flag is named before any file is read
      const bytes = readImageFile(path);
      refuseModelFile(path, bytes);
      const { baud, from } = boardBaud(o.baud, imageBoard(bytes));
      const client = await connectBoard(o.port, baud, !!o.trace);
      // after the port opened and the board answered: a port that cannot be opened is one line
      if (o.baud === undefined) log(`flash: ${o.port} at ${baud} baud (${from})`);
      try {
        const r = await flashWithProgress(client, bytes, { port: o.port, baud, trace: !!o.trace, reset: o.reset !== false, interruptLine: true });
        process.stdout.write((o.json ? JSON.stringify(flashJson(path, bytes, r, baud)) : flashSummary(path, bytes, r, baud)) + '\n');
      } finally {
        await client.close();
      }
    });
}

// flash() with the progress bar (bytes, rate, ETA) on stderr: the verb's and the demo's.
// With interruptLine (the flash verb), Ctrl-C during the upload ends it with one line: where it stopped,
// and that the same command resumes there (exit 130, as a shell reports SIGINT).
export async function flashWithProgress(client: Client, bytes: Uint8Array, o: { port: string; baud: number; trace: boolean; reset: boolean; interruptLine?: boolean }): Promise<FlashResult> {
  let bar: ReturnType<typeof progress> | undefined, last = 0, first = -1;
  // the session is ended (BYE: the board's terminal works right after) before the one line and the exit;
  // host/board/connect.ts's own handler leaves the exit to this one
  const onSigint = () => {
    bar?.done();
    void client.end().finally(() => {
      log(`flash: interrupted at ${last} of ${bytes.byteLength} bytes; the session with the board was ended; the same flash command resumes from there`);
      process.exit(130);
    });
  };
  if (o.interruptLine) process.on('SIGINT', onSigint);
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
    process.off('SIGINT', onSigint);
    bar?.done();
  }
}

export function flashSummary(path: string, bytes: Uint8Array, r: FlashResult, baud: number): string {
  const s = r.upload.ms / 1000, rate = (bytes.byteLength - r.upload.resumedAt) / Math.max(s, 1e-3);
  const u = r.upload, sizes = Object.keys(u.chunkSizes).map(Number);
  // a noisy line: how often the upload went back, and the chunk sizes it came down to
  const noisy = u.rewinds ? `; ${u.rewinds} resends (${u.timeouts} timeouts), chunks of ${Math.min(...sizes)}..${Math.max(...sizes)} bytes` : '';
  return `${path}: ${bytes.byteLength} bytes to ${r.board.board} slot ${r.slot}${r.upload.resumedAt ? ` (resumed at ${r.upload.resumedAt})` : ''} in ${s.toFixed(1)} s ` +
    `(${(rate / 1024).toFixed(1)} KiB/s, ${lineShare(rate, baud)}), verified SHA-256 ${r.sha256.slice(0, 16)}` +
    `${r.booted ? ', booted' : ', committed (boots at the next reset)'}${noisy}`;
}

// flash --json: the figures of the summary line, and the upload's retries and chunk sizes.
export function flashJson(path: string, bytes: Uint8Array, r: FlashResult, baud: number): Record<string, unknown> {
  const u = r.upload, s = u.ms / 1000;
  return {
    image: path, bytes: bytes.byteLength, board: r.board.board, slot: r.slot, sha256: r.sha256, verified: true, booted: r.booted !== null,
    baud, seconds: s, bytes_per_s: (bytes.byteLength - u.resumedAt) / Math.max(s, 1e-3), resumed_at: u.resumedAt,
    sent_bytes: u.bytes,
    retries: { resends: u.rewinds, timeouts: u.timeouts, corrupt_frames_reported: u.deviceErrors, resent_bytes: u.bytes - (bytes.byteLength - u.resumedAt) },
    chunk_max: u.chunkMax,
    chunk_sizes: Object.fromEntries(Object.entries(u.chunkSizes).sort((a, b) => Number(b[0]) - Number(a[0]))),
  };
}

// The upload's rate against the line's (10 bits a byte): above the line's rate the link is not paced at
// that baud (a virtual board without --baud, a USB-CDC port), and a percentage would mean nothing.
export function lineShare(bytesPerS: number, baud: number): string {
  const pct = (100 * bytesPerS * 10) / baud;
  return pct <= 110 ? `${pct.toFixed(0)} % of ${baud} baud` : `faster than ${baud} baud: the link is not paced at its baud rate`;
}

// The board an image names in its header (the u16 after the magic and version: docs/image-format.md), for
// the line rate; undefined when the bytes are no image or the id is unknown (the board refuses it then).
export function imageBoard(bytes: Uint8Array): BoardProfile | undefined {
  try {
    return readImage(bytes).board;
  } catch {
    return undefined;
  }
}
