// What the `flash --rom` tests share (test/rom-flash.test.ts against the mock, test/rom-qemu.test.ts
// against the real ROMs in QEMU): the CLI run as a user runs it, the one-line error check, ESP-IDF
// build folders as idf.py leaves them, and a small model image for a board.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { writeImage } from '../host/image/write.ts';
import { fromRoot } from '../host/paths.ts';
import { imageParts, TINY } from './fixtures/image.ts';
import { rng } from './helpers.ts';

const BIN = fromRoot('bin', 'edge-flash.js');

export interface CliRun { code: number | null; out: string; err: string; ms: number }

// The CLI in a child process, asynchronously (a mock answers from this process's event loop); killed
// after limitMs. ROM_FLASH_TIMES=1 prints each run's time and stderr.
export function cli(args: string[], limitMs = 60_000): Promise<CliRun> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    const timer = setTimeout(() => p.kill('SIGKILL'), limitMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (process.env.ROM_FLASH_TIMES) process.stderr.write(`${args.slice(0, 8).join(' ')}: ${(performance.now() - t0).toFixed(0)} ms\n${err}`);
      resolve({ code, out, err, ms: performance.now() - t0 });
    });
  });
}

// Exit 2, exactly one `edge-flash: ` line matching re, no stack trace.
export function oneLineError(r: { code: number | null; err: string }, re: RegExp): void {
  assert.is(r.code, 2, r.err);
  const lines = r.err.trim().split('\n').filter((l) => l.startsWith('edge-flash: '));
  assert.is(lines.length, 1, r.err);
  assert.match(lines[0], re);
  assert.not.match(r.err, /\n\s+at /);
}

// A binary partition table as idf.py writes it (host/board/esp-partitions.ts reads it): the board
// profile's partitions, or others, then the MD5 entry, then 0xFF to 0xC00 bytes.
export function partitionTable(parts: Array<{ name: string; type: string; subtype: string; offset: number; size: number }>): Uint8Array {
  const b = new Uint8Array(0xc00).fill(0xff);
  const v = new DataView(b.buffer);
  parts.forEach((p, i) => {
    const at = 32 * i;
    v.setUint16(at, 0x50aa, true);
    b[at + 2] = p.type === 'app' ? 0 : 1;
    b[at + 3] = /^0x/.test(p.subtype) ? parseInt(p.subtype, 16) : 0;
    v.setUint32(at + 4, p.offset, true);
    v.setUint32(at + 8, p.size, true);
    b.fill(0, at + 12, at + 28);
    b.set(new TextEncoder().encode(p.name), at + 12);
    v.setUint32(at + 28, 0, true);
  });
  const md5At = 32 * parts.length;
  v.setUint16(md5At, 0xebeb, true);
  b.set(createHash('md5').update(b.subarray(0, md5At)).digest(), md5At + 16);
  return b;
}

export interface FakeFirmware { dir: string; files: Array<{ offset: number; data: Uint8Array }> }

// An ESP-IDF build folder under `parent` as idf.py leaves it: flash_args, the bootloader and the app
// (random bytes after the app's 0xE9 magic) and the board profile's partition table (or the one given).
export function fakeFirmware(parent: string, name: string, o: { board: string; bootloaderAt: number; flashSize: string; table?: Uint8Array; appBytes?: number; bootloaderBytes?: number }): FakeFirmware {
  const d = join(parent, name);
  mkdirSync(join(d, 'bootloader'), { recursive: true });
  mkdirSync(join(d, 'partition_table'), { recursive: true });
  const r = rng(name.length);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  const app = bytes(o.appBytes ?? 150_002);
  app[0] = 0xe9;
  const files = [
    { rel: 'bootloader/bootloader.bin', offset: o.bootloaderAt, data: bytes(o.bootloaderBytes ?? 26_385) },
    { rel: 'edge-flash.bin', offset: 0x10000, data: app },
    { rel: 'partition_table/partition-table.bin', offset: 0x8000, data: o.table ?? partitionTable(boardByName(o.board).flash.partitions) },
  ];
  for (const f of files) writeFileSync(join(d, f.rel), f.data);
  writeFileSync(join(d, 'flash_args'), `--flash_mode dio --flash_freq 40m --flash_size ${o.flashSize}\n${files.map((f) => `0x${f.offset.toString(16)} ${f.rel}`).join('\n')}\n`);
  return { dir: d, files };
}

// A small valid edge-flash image for a board (the tiny test model, about 18 KB; its fit cannot be
// planned: the app in it is a stand-in, which `flash --rom` says and goes on).
export function tinyImage(board: string): Uint8Array {
  return writeImage(imageParts(TINY, 7, { boardId: boardByName(board).id }, { ctx: 16 })).bytes;
}
