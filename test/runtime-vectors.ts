// The checks every build of the device runtime must pass, whatever CPU it was built for: the shared
// protocol vectors (framing, through frame_check), the image vectors and the TypeScript reader's codes
// on mutated images (through image_check), and a session over a pseudo-terminal with the host's own
// serial stack and CLI (HELLO, INFO, `edge-flash flash`: upload, VERIFY, COMMIT, RESET, the image boots).
// The native suites (runtime-frames, runtime-image) run them on build/; runtime-cross on the Raspberry
// Pi builds under qemu-user.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { info } from '../host/board/commands.ts';
import { connectBoard } from '../host/board/connect.ts';
import { ImageError, H, HEADER_BYTES, KV_CODES, ACT_CODES, SECTION_ENTRY_BYTES } from '../host/image/format.ts';
import { readImage } from '../host/image/read.ts';
import { sha256, toHex } from '../host/image/sign.ts';
import { seal } from '../host/image/write.ts';
import { fromRoot } from '../host/paths.ts';
import { cli, rng } from './helpers.ts';

// A build of the runtime's programs: the folder make wrote, and the command that runs one of its
// programs (empty for this machine's, ['qemu-aarch64'] for a cross build).
export interface RuntimeBuild {
  name: string;
  dir: string;
  wrap: string[];
  runtime?: string;   // the runtime's file in dir: edge-flash-runtime (default) or edge-flash-runtime-aot
}

const IMAGE_VEC = fromRoot('test', 'vectors', 'image');
const PROTOCOL = JSON.parse(readFileSync(fromRoot('test', 'vectors', 'protocol', 'vectors.json'), 'utf8'));
const IMAGES = JSON.parse(readFileSync(join(IMAGE_VEC, 'vectors.json'), 'utf8'));

function exec(b: RuntimeBuild, prog: string, args: string[], input?: string) {
  const [cmd, ...pre] = [...b.wrap, join(b.dir, prog)];
  const r = spawnSync(cmd, [...pre, ...args], { input, encoding: 'utf8', maxBuffer: 256 << 20, timeout: 120_000 });
  assert.is(r.status, 0, `${b.name} ${prog}: exit ${r.status} ${r.signal ?? ''} ${r.error?.message ?? ''}\n${r.stderr}`);
  return r.stdout;
}

// ---- protocol vectors: frame_check answers one line per request line
function frames(b: RuntimeBuild, lines: string[]): string[] {
  return exec(b, 'frame_check', [], lines.join('\n') + '\n').split('\n').slice(0, lines.length);
}

export function cobsVectors(b: RuntimeBuild): void {
  const got = frames(b, PROTOCOL.cobs.map((c: any) => `C ${c.data}`));
  PROTOCOL.cobs.forEach((c: any, i: number) => assert.is(got[i], c.encoded, c.name));
}

export function frameVectors(b: RuntimeBuild): void {
  const got = frames(b, PROTOCOL.frames.map((f: any) => `F ${f.type} ${f.seq} ${f.payload}`));
  PROTOCOL.frames.forEach((f: any, i: number) => assert.is(got[i], f.wire, f.name));
  const toDevice = PROTOCOL.frames.filter((f: any) => f.type < 0x40);
  assert.ok(toDevice.length >= 10);
  const dec = frames(b, toDevice.map((f: any) => `D 65535 00${f.wire}`));
  toDevice.forEach((f: any, i: number) => assert.is(dec[i], `frame ${f.type} ${f.seq} ${f.payload}`, f.name));
}

// The C receiver does not report skipped or held bytes as events (it has no use for them), so those
// entries are not compared.
export function decodeVectors(b: RuntimeBuild): void {
  const cases = PROTOCOL.decode.filter((d: any) => d.receives === 'to_device');
  assert.ok(cases.length >= 15, `${cases.length} cases`);
  const got = frames(b, cases.map((d: any) => `D ${d.max_frame} ${d.stream}`));
  cases.forEach((d: any, i: number) => {
    const want = d.events.filter((e: any) => !('skip' in e)).map((e: any) => ('frame' in e ? `frame ${e.type} ${e.seq} ${e.payload}` : `error ${e.code} ${e.req_type} ${e.seq} ${e.arg}`));
    assert.is(got[i], want.join(';'), `${d.name}: ${d.about}`);
  });
}

// ---- image vectors: image_check reads each file given and prints one JSON line for each
function boardArgs(name: string): string[] {
  const bd = boardByName(name);
  const accepts = bd.accepts.map((a) => boardByName(a).id);
  return ['--board-id', String(bd.id), '--capacity', String(bd.imageCapacity), ...(accepts.length ? ['--accepts', accepts.join(',')] : [])];
}

function cRead(b: RuntimeBuild, files: string[], args: string[]): any[] {
  const lines = exec(b, 'image_check', [...args, ...files]).trim().split('\n');
  assert.is(lines.length, files.length, lines.join('\n'));
  return lines.map((l) => JSON.parse(l));
}

export function imageVectors(b: RuntimeBuild): void {
  // one image_check run for all the vectors read with the same options (a process start under qemu is slow)
  const byArgs = new Map<string, any[]>();
  for (const v of IMAGES.vectors) {
    const args = JSON.stringify([...boardArgs(v.board), ...(v.public_key ? ['--key', IMAGES.test_public_key] : [])]);
    byArgs.set(args, [...(byArgs.get(args) ?? []), v]);
  }
  const results = new Map<any, any>();
  for (const [args, vs] of byArgs) cRead(b, vs.map((v) => join(IMAGE_VEC, v.file)), JSON.parse(args)).forEach((got, i) => results.set(vs[i], got));
  let good = 0;
  for (const v of IMAGES.vectors) {
    const got = results.get(v);
    const e = v.expect;
    if (!e.ok) {
      assert.is(got.ok, false, `${v.file}: C reader accepted it (${v.defect})`);
      assert.is(got.code, e.code, `${v.file}: ${got.message}`);
      continue;
    }
    good++;
    assert.ok(got.ok, `${v.file}: ${got.code}: ${got.message}`);
    assert.is(got.board_id, e.board_id);
    assert.is(got.total_size, e.total_size);
    assert.is(got.sha256, e.sha256);
    assert.is(got.signed, e.signed);
    assert.equal(got.sections, e.sections.map((s: any) => ({ kind: s.kind, offset: s.offset, size: s.size, align: s.align, crc32: s.crc32 })));
    assert.equal({ ...got.config, kv: KV_CODES[got.config.kv], act: ACT_CODES[got.config.act] }, e.config);
    assert.equal(got.tensors, e.tensors.map((t: any) => ({ name: t.name, format_id: t.format_id, rows: t.rows, cols: t.cols, cols_padded: t.cols_padded, scale: t.scale, offset: t.offset, size: t.size })));
  }
  assert.is(good, 2);
}

// The mutations of test/image-fuzz.test.ts, resealed half the time so they reach the contents checks.
function mutate(r: () => number, src: Uint8Array): Uint8Array {
  const pick = (n: number) => Math.floor(r() * n);
  let b = src.slice();
  const v = () => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = 1 + pick(3);
  for (let s = 0; s < n && b.byteLength; s++) {
    const op = pick(7);
    const at = () => (r() < 0.6 ? pick(Math.min(b.byteLength, 2048)) : pick(b.byteLength));
    if (op === 0) b[at()] ^= 1 << pick(8);
    else if (op === 1) b[at()] = pick(256);
    else if (op === 2) { const i = at() & ~3; if (i + 4 <= b.byteLength) v().setUint32(i, [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, pick(1 << 16), b.byteLength][pick(7)] >>> 0, true); }
    else if (op === 3) b = b.slice(0, pick(b.byteLength));
    else if (op === 4) b = new Uint8Array([...b, ...new Uint8Array(pick(64)).map(() => pick(256))]);
    else if (op === 5) { const count = b.byteLength >= 18 ? v().getUint16(H.sectionCount, true) : 0; const e = HEADER_BYTES + pick(Math.max(count, 1)) * SECTION_ENTRY_BYTES + 4 * pick(5); if (e + 4 <= b.byteLength) v().setUint32(e, (v().getUint32(e, true) + (pick(2) ? 16 : -16)) >>> 0, true); }
    else { const i = at(); b.fill(pick(2) ? 0 : 0xff, i, i + 1 + pick(16)); }
  }
  if (r() < 0.5 && b.byteLength >= HEADER_BYTES) {
    try { seal(b); } catch { /* a table seal() cannot follow stays unsealed */ }
  }
  return b;
}

// `count` seeded mutations of the two good vectors: the C reader gives each the TypeScript reader's code.
// Returns how often each code came, for the suite's log line.
export function mutationAgreement(b: RuntimeBuild, count: number, seed: number): { codes: Map<string, number>; lenient: number } {
  const r = rng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rt-image-'));
  const board = boardByName('esp32');
  const bases = [readFileSync(join(IMAGE_VEC, 'small.efimg')), readFileSync(join(IMAGE_VEC, 'small-signed.efimg'))].map((x) => new Uint8Array(x));
  const files: string[] = [];
  const want: string[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = mutate(r, bases[i % 2]);
    const f = join(dir, `${i}.efimg`);
    writeFileSync(f, bytes);
    files.push(f);
    try {
      readImage(bytes, { board });
      want.push('ok');
    } catch (e) {
      if (!(e instanceof ImageError)) throw e;
      want.push(e.code);
    }
  }
  const got = cRead(b, files, boardArgs('esp32'));
  const codes = new Map<string, number>();
  let lenient = 0;
  for (let i = 0; i < files.length; i++) {
    const g = got[i].ok ? 'ok' : got[i].code;
    // Known divergence: the TypeScript reader compares a tensor name after mapping bytes outside
    // printable ASCII to '.', so it takes 'blk\xae0.attn_q' for 'blk.0.attn_q'; the spec says ASCII,
    // and the C reader refuses it. Counted, and only this case.
    if (g === 'tensor' && want[i] === 'ok' && /is named '.*[^\x20-\x7e].*', expected/.test(got[i].message)) { lenient++; continue; }
    assert.is(g, want[i], `${b.name}: mutation ${i} (seed ${seed}, ${files[i]}): C says ${g} (${got[i].message ?? ''}), TypeScript ${want[i]}`);
    codes.set(g, (codes.get(g) ?? 0) + 1);
  }
  return { codes, lenient };
}

// ---- a session over a pty, as a laptop drives a board: the runtime serves on a pseudo-terminal
// (--pty prints its path), the host's serial stack reads HELLO and INFO, `edge-flash flash` uploads,
// verifies, commits and resets, INFO then shows the image booted from slot A with its app loaded, and a
// short `edge-flash chat` gives the tokens `edge-flash run` gives on the same image.
export async function ptySession(b: RuntimeBuild, image: string, boardName = 'host'): Promise<void> {
  const bd = boardByName(boardName);
  const dir = mkdtempSync(join(tmpdir(), `edge-flash-rt-${b.name}-`));
  const capacity = readFileSync(image).byteLength + 65536;
  const [cmd, ...pre] = [...b.wrap, join(b.dir, b.runtime ?? 'edge-flash-runtime')];
  const proc = spawn(cmd, [...pre, '--slot-file', join(dir, 'slots.bin'), '--board-id', String(bd.id), '--board-name', bd.name,
    '--capacity', String(capacity), '--erase-block', '4096', '--serve', '--pty'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d; });
  try {
    const path: string = await new Promise((res, rej) => {
      let s = '';
      proc.stdout!.on('data', (d: Buffer) => { s += d; if (s.includes('\n')) res(JSON.parse(s.split('\n')[0]).pty); });
      proc.on('exit', (c) => rej(new Error(`${b.name} runtime exited (${c}) before its pty line: ${err}`)));
      const t = setTimeout(() => rej(new Error(`${b.name}: no pty line in 20 s: ${err}`)), 20_000);
      proc.stdout!.once('data', () => clearTimeout(t));
    });
    let c = await connectBoard(path, 115200);
    let i = await info(c);
    assert.equal([i.boardId, i.slotCapacity, i.eraseBlock, i.bootedSlot, i.slots, i.runtimeVersion, i.wasm3Version],
      [bd.id, capacity, 4096, null, { A: 'empty', B: 'empty' }, '0.1.0', '0.9.0']);
    await c.close();
    const f = cli('flash', image, '--port', path);
    assert.is(f.code, 0, f.err);
    const sha = toHex(sha256(new Uint8Array(readFileSync(image))));
    assert.match(f.out, new RegExp(`bytes to ${bd.name} slot A in .* verified SHA-256 ${sha.slice(0, 16)}, booted\\n$`));
    c = await connectBoard(path, 115200);
    i = await info(c);
    assert.equal([i.bootedSlot, i.bootedSha256, i.appLoaded, i.slots.A], ['A', sha, true, 'confirmed']);
    await c.close();
    // a short chat: the board's reply is the host's `run` of the same image, token for token
    const gen = ['-i', 'In the beginning', '-n', '12', '-t', '0', '--json'];
    const chat = cli('chat', '--port', path, '-m', 'generate', ...gen);
    assert.is(chat.code, 0, chat.err);
    const run = cli('run', image, '--engine', 'wasm3', ...gen);
    assert.is(run.code, 0, run.err);
    assert.equal(JSON.parse(chat.out).tokens, JSON.parse(run.out).tokens.slice(1), `${b.name}: the board's tokens`);
  } finally {
    proc.kill();
  }
}
