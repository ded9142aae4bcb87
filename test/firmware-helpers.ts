// The generated ESP-IDF firmware as the firmware suites build and run it (test/firmware.test.ts for
// wasm3, test/firmware-aot.test.ts for --aot): `edge-flash firmware` into boards/runtime/build/firmware/
// (kept between runs: make rebuilds what changed), its C built against the stand-ins in
// test/esp-idf-stubs/ for x86-64 or -m32, then run as the board would: app_main on the stand-ins'
// flash file and console (stdin/stdout), driven by the host's own client (host/board/).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { Client } from '../host/board/client.ts';
import { chat, flash, info, upload } from '../host/board/commands.ts';
import { Decoder, type DecodeEvent } from '../host/board/framing.ts';
import { REPLY_BIT } from '../host/board/frames.ts';
import { StreamTransport } from '../host/board/transport.ts';
import { AOT_PSRAM_DEFINE, firmwareLayout, runtimeSources, SLOT_PARTITIONS, STATE_PARTITION, WASM3_DEFINES, WASM3_PSRAM_DEFINE } from '../host/firmware/project.ts';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';

export const WORK = fromRoot('boards', 'runtime', 'build', 'firmware');
const MODEL = fromRoot('models', 'kjv-esp32-260k');
const PV = JSON.parse(readFileSync(fromRoot('test', 'vectors', 'protocol', 'vectors.json'), 'utf8'));
const IV = JSON.parse(readFileSync(fromRoot('test', 'vectors', 'image', 'vectors.json'), 'utf8'));
export const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
// scratch: images, flash files (a board's flash size each); removed by cleanup()
export const tmp = mkdtempSync(join(tmpdir(), 'edge-flash-firmware-'));
export const cleanup = () => rmSync(tmp, { recursive: true, force: true });

export function pack(board: string, ctx: number, out: string, force = false): string {
  const r = cli('pack', MODEL, '--board', board, '--quant', 'tb1', '--kv', 'int4', '--ctx', String(ctx), ...(force ? ['--ignore-fit', '--force'] : []), '-o', out);
  assert.is(r.code, 0, r.err);
  return out;
}

export function generate(board: string, name: string, extra: string[] = []): string {
  const dir = join(WORK, name, 'project');
  const r = cli('firmware', '--board', board, '-o', dir, '--force', ...extra);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, `ESP-IDF project for ${board}`);
  return dir;
}

export interface Build { exe: string; project: string; board: string; psram: number; aot: boolean }
// The project's C for `bits`, with the definitions its CMake files make (wasm3's, or the AOT build's).
export function build(project: string, board: string, bits: 32 | 64, aot = false): Build {
  const b = boardByName(board);
  const psram = b.memory.psram ?? 0;
  const out = join(project, '..', `host-${bits}`);
  const src = runtimeSources();
  const vars = aot
    ? [`AOT_DEFS=${src.AOT_DEFS.join(' ')}`, `AOT_FP=${src.AOT_FP.join(' ')}`, `RT_DEFS=${psram ? `-D${AOT_PSRAM_DEFINE}` : ''}`]
    : [`WASM3_DEFS=${WASM3_DEFINES.map((d) => `-D${d}`).join(' ')}`, `ENV_DEFS=${psram ? `-D${WASM3_PSRAM_DEFINE}` : ''}`];
  const r = spawnSync('make', ['-s', '-j2', '-f', fromRoot('test', 'esp-idf-stubs', 'Makefile'), `PROJECT=${project}`, `OUT=${out}`, `BITS=${bits}`, ...vars], { encoding: 'utf8' });
  assert.is(r.status, 0, `the ${board} firmware does not build for ${bits}-bit:\n${r.stdout}${r.stderr}`);
  return { exe: join(out, 'firmware'), project, board, psram, aot };
}

// One run of the firmware: a flash file (fresh unless given), the host's client on its console.
export interface Run { proc: ChildProcess; client: Client; stderr: () => string; raw: () => Uint8Array; flashFile: string; done: () => Promise<string> }
export function run(fw: Build, flashFile = join(tmp, `flash-${Math.random().toString(36).slice(2)}.bin`)): Run {
  const b = boardByName(fw.board);
  const proc = spawn(fw.exe, [], {
    env: { ...process.env, EF_STUB_PARTITIONS: join(fw.project, 'partitions.csv'), EF_STUB_FLASH: flashFile, EF_STUB_FLASH_SIZE: String(b.flash.size), EF_STUB_PSRAM: String(fw.psram) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  const chunks: Buffer[] = [];
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  proc.stdout!.on('data', (d: Buffer) => chunks.push(d));
  const client = new Client(new StreamTransport(`${fw.board} firmware`, Duplex.from({ readable: proc.stdout!, writable: proc.stdin! })), 115200);
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  return {
    proc, client, flashFile, stderr: () => err, raw: () => Buffer.concat(chunks),
    done: async () => { proc.stdin!.end(); await exited; return err; },
  };
}

// Writes what `idf.py flash` of a project generated with --image writes besides the app: the image at
// slot A's offset, the erased slot record (the offsets from the generator's own layout).
export function flashAsIdf(board: string, image: Uint8Array, file: string): void {
  const b = boardByName(board);
  const layout = firmwareLayout(b);
  const flashBytes = new Uint8Array(b.flash.size).fill(0xff);
  const at = (name: string) => layout.partitions.find((p) => p.name === name)!.offset;
  flashBytes.set(image, at(SLOT_PARTITIONS[0]));
  flashBytes.fill(0xff, at(STATE_PARTITION), at(STATE_PARTITION) + 0x2000);
  writeFileSync(file, flashBytes);
}


// The device's receiver takes frames up to EF_MAX_FRAME (4106 bytes); the vectors' decode cases run a
// 256-byte receiver: those that probe that limit are the C framing's (runtime-frames), not the port's.
const streams = PV.decode.filter((d: any) => d.receives === 'to_device' && !d.stream.split('00').some((chunk: string) => chunk.length > 400));

// The device's frames once `want` have come (none expected: what came in 300 ms).
async function deviceFrames(r: Run, want: number): Promise<DecodeEvent[]> {
  const end = Date.now() + (want ? 3000 : 300);
  for (;;) {
    const events = new Decoder('to_host', 65535).push(r.raw()).filter((e) => e.kind === 'frame');
    if (events.length >= want || Date.now() > end) return events;
    await new Promise((res) => setTimeout(res, 20));
  }
}

// Every to-device stream of the protocol vectors through the port's console: one answer per frame and
// one ERROR per defect, in order.
export async function protocolVectors(fw: Build): Promise<void> {
  assert.ok(streams.length >= 15, `${streams.length} streams`);
  for (const d of streams) {
    const r = run(fw);
    r.proc.stdin!.write(Buffer.from(d.stream, 'hex'));
    const events = d.events.filter((e: any) => !('skip' in e));
    const got = (await deviceFrames(r, events.length)) as Array<Extract<DecodeEvent, { kind: 'frame' }>>;
    await r.done();
    assert.is(got.length, events.length, `${fw.board} ${fw.exe}: ${d.name}: ${got.length} frames for ${events.length} events`);
    events.forEach((e: any, i: number) => {
      const f = got[i];
      if ('error' in e) {
        assert.is(f.type.name, 'ERROR', `${d.name} #${i}`);
        assert.equal([f.seq, f.payload[0], f.payload[1] | (f.payload[2] << 8), new DataView(f.payload.buffer, f.payload.byteOffset + 3, 4).getUint32(0, true)],
          [e.seq, e.req_type, e.code, e.arg], `${d.name} #${i}: ERROR seq, req_type, code, arg`);
      } else {
        assert.is(f.seq, e.seq, `${d.name} #${i}`);
        assert.ok(f.type.code === (e.type | REPLY_BIT) || (f.type.name === 'ERROR' && f.payload[0] === e.type), `${d.name} #${i}: ${f.type.name} answers type ${e.type}`);
      }
    });
  }
}

// Every image vector uploaded into a slot through the port's storage, then VERIFY: the good verify,
// each bad one fails with its code. Returns the firmware's stderr.
export async function imageVectors(fw: Build): Promise<string> {
  const key = IV.vectors.filter((v: any) => !v.public_key);
  assert.ok(key.length >= 25);
  const r = run(fw);
  await r.client.hello();
  for (const v of key) {
    const bytes = readFileSync(fromRoot('test', 'vectors', 'image', v.file));
    let outcome: string;
    try {
      await upload(r.client, bytes);
      const got = await r.client.request('VERIFY', {}, 10_000, 'verify');
      outcome = `ok ${Buffer.from(got.sha256 as Uint8Array).toString('hex')}`;
    } catch (e) {
      outcome = (e as Error).message;
    }
    if (v.expect.ok) assert.is(outcome, `ok ${sha(bytes)}`, v.file);
    // shorter than a header and its digest: the protocol refuses it at UPLOAD_BEGIN, before any check
    else if (bytes.byteLength < 56) assert.match(outcome, 'image_size is smaller than an image\'s header and digest', v.file);
    else assert.match(outcome, `${v.expect.code}: `, `${v.file}: ${outcome}`);
  }
  return r.done();
}

// An image flashed into slot A as `idf.py flash` writes it boots and is confirmed; `other`, uploaded over
// the protocol, replaces it after RESET. Returns what the second boot reports and the firmware's stderr.
export async function flashedThenReplaced(fw: Build, image: Uint8Array, other: Uint8Array): Promise<{ linearMemory: number; err: string }> {
  const file = join(tmp, `idf-${fw.board}-${Math.random().toString(36).slice(2)}.bin`);
  flashAsIdf(fw.board, image, file);
  const r = run(fw, file);
  await r.client.hello();
  const i = await info(r.client);
  assert.is(i.board, fw.board);
  assert.is(i.bootedSha256, sha(image), `${fw.board}: boots the flashed image: ${r.stderr()}`);
  assert.is(i.slotCapacity, firmwareLayout(boardByName(fw.board)).slotBytes);
  assert.is(i.slots.A, 'confirmed');
  assert.ok(i.appLoaded, 'the app loaded (the self-test passed)');
  const f = await flash(r.client, other, { reset: true });
  assert.is(f.slot, 'B');
  assert.is(f.booted!.bootedSha256, sha(other));
  return { linearMemory: f.booted!.linearMemory, err: await r.done() };
}

// The last boot's report in the stand-ins' exit line: PSRAM bytes held (linear memory's one block).
export const psramHeld = (err: string) => Number([...err.matchAll(/psram_held=(\d+)/g)].at(-1)![1]);

// A short greedy chat with the image flashed into slot A: the board's tokens are the host's
// `run IMAGE --engine wasm3` tokens (its first one, the BOS it starts from, aside).
export const CHAT = { prompt: 'In the beginning', steps: 12 };
export async function chatTokens(fw: Build, imagePath: string): Promise<number[]> {
  const file = join(tmp, `chat-${fw.board}-${Math.random().toString(36).slice(2)}.bin`);
  flashAsIdf(fw.board, readFileSync(imagePath), file);
  const r = run(fw, file);
  await r.client.hello();
  const got = await chat(r.client, { prompt: CHAT.prompt, seed: 1, temperature: 0, topP: 0.9, steps: CHAT.steps, mode: 'generate', newConversation: true }).done;
  await r.done();
  return got.tokens;
}
export function runTokens(imagePath: string): number[] {
  const r = cli('run', imagePath, '--engine', 'wasm3', '-i', CHAT.prompt, '-n', String(CHAT.steps), '-t', '0', '--json');
  assert.is(r.code, 0, r.err);
  return JSON.parse(r.out).tokens.slice(1);
}
