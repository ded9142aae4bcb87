// The virtual board's protocol (boards/runtime/core/protocol.c, docs/protocol.md) driven byte by byte
// over its stdin/stdout and over a pseudo-terminal: HELLO, INFO, an upload with a window of chunks,
// a resume keyed by SHA-256, go-back-N on a lost chunk, VERIFY that cannot be skipped, COMMIT, RESET and
// the boot of the new image; corrupt, unknown, oversized and short frames each answered with their own
// ERROR while the runtime keeps serving; a boot log before the first 0x00 skipped; terminal mode.
// The client below is the test's own minimal framing (COBS + CRC-32), written from the spec.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32 } from '../host/image/crc32.ts';
import { fromRoot } from '../host/paths.ts';
import { makeRuntime } from './runtime-helpers.ts';

const bin = join(makeRuntime(), 'edge-flash-runtime');
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rt-proto-'));
const VEC = fromRoot('test', 'vectors', 'image');
const BOARD = ['--board-id', '2', '--capacity', '65536', '--erase-block', '4096', '--board-name', 'esp32'];

function cobs(body: Uint8Array): Uint8Array {
  const out: number[] = [0];
  let codeAt = 0, code = 1;
  for (const b of body) {
    if (b === 0) { out[codeAt] = code; codeAt = out.length; out.push(0); code = 1; }
    else { out.push(b); if (++code === 0xff) { out[codeAt] = code; codeAt = out.length; out.push(0); code = 1; } }
  }
  out[codeAt] = code;
  return Uint8Array.from(out);
}
function uncobs(e: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < e.length;) {
    const k = e[i++];
    for (let j = 1; j < k; j++) out.push(e[i++]);
    if (k < 255 && i < e.length) out.push(0);
  }
  return Uint8Array.from(out);
}
function body(type: number, seq: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(payload.length + 6);
  b[0] = type; b[1] = seq; b.set(payload, 2);
  new DataView(b.buffer).setUint32(payload.length + 2, crc32(b.subarray(0, payload.length + 2)), true);
  return b;
}
const wire = (b: Uint8Array) => Uint8Array.from([...cobs(b), 0]);
const u32 = (...xs: number[]) => { const b = new Uint8Array(4 * xs.length); xs.forEach((x, i) => new DataView(b.buffer).setUint32(4 * i, x, true)); return b; };
const cat = (...bs: Uint8Array[]) => { const o = new Uint8Array(bs.reduce((n, b) => n + b.length, 0)); let at = 0; for (const b of bs) { o.set(b, at); at += b.length; } return o; };

interface Frame { type: number; seq: number; payload: Uint8Array; view: DataView }

// A board on the other end of a byte stream: frames and plain text as they arrive.
class Board {
  private buf: number[] = [];
  private synced = false;
  text = '';
  raw = '';
  bad = 0;
  frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  constructor(readonly write: (b: Uint8Array) => void, readonly close: () => void) {}
  feed(chunk: Uint8Array) {
    for (const c of chunk) {
      if (c !== 0) this.raw += String.fromCharCode(c);
      if (c !== 0) { if (this.synced) this.buf.push(c); else this.text += String.fromCharCode(c); continue; }
      this.synced = true;
      if (!this.buf.length) continue;
      const enc = Uint8Array.from(this.buf);
      this.buf = [];
      const b = uncobs(enc);
      // plain text between frames (the banner after RESET) is a bad frame to a host: counted, kept as text
      if (b.length < 6 || new DataView(b.buffer).getUint32(b.length - 4, true) !== crc32(b.subarray(0, b.length - 4))) {
        this.bad++;
        this.text += String.fromCharCode(...enc);
        continue;
      }
      const payload = b.subarray(2, b.length - 4);
      this.frames.push({ type: b[0], seq: b[1], payload, view: new DataView(payload.buffer, payload.byteOffset, payload.byteLength) });
    }
    this.waiters.splice(0).forEach((w) => w());
  }
  async next(ms = 5000): Promise<Frame> {
    const t0 = Date.now();
    while (!this.frames.length) {
      if (Date.now() - t0 > ms) throw new Error(`no frame within ${ms} ms (text: ${JSON.stringify(this.text)})`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
    return this.frames.shift()!;
  }
  async waitText(re: RegExp, ms = 5000, raw = false) {
    const t0 = Date.now();
    while (!re.test(raw ? this.raw : this.text)) {
      if (Date.now() - t0 > ms) throw new Error(`no ${re} within ${ms} ms: ${JSON.stringify(raw ? this.raw : this.text)}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }
  send(type: number, seq: number, payload = new Uint8Array()) { this.write(wire(body(type, seq, payload))); }
  async ask(type: number, seq: number, payload = new Uint8Array()): Promise<Frame> { this.send(type, seq, payload); return this.next(); }
}

function stdioBoard(slotFile: string): { board: Board; proc: ChildProcess } {
  const proc = spawn(bin, ['--slot-file', slotFile, ...BOARD, '--serve', '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const board = new Board((b) => proc.stdin!.write(b), () => proc.kill());
  proc.stdout!.on('data', (d: Buffer) => board.feed(d));
  return { board, proc };
}

const ERR = 0x7f;
function expectError(f: Frame, code: number, what: string) {
  assert.is(f.type, ERR, `${what}: type 0x${f.type.toString(16)}`);
  assert.is(f.view.getUint16(1, true), code, `${what}: ${new TextDecoder().decode(f.payload.subarray(7))}`);
  return { req: f.payload[0], arg: f.view.getUint32(3, true), msg: new TextDecoder().decode(f.payload.subarray(7)) };
}

function parseInfo(f: Frame) {
  const v = f.view, p = f.payload;
  const strs: string[] = [];
  let at = 108;
  for (let i = 0; i < 3; i++) { const n = p[at]; strs.push(new TextDecoder().decode(p.subarray(at + 1, at + 1 + n))); at += 1 + n; }
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return {
    board: v.getUint16(2, true), maxFrame: v.getUint32(4, true), capacity: v.getUint32(8, true), erase: v.getUint32(12, true),
    booted: p[32], a: p[33], b: p[34], flags: p[35], bootedSha: hex(p.subarray(36, 68)), uploadSha: hex(p.subarray(68, 100)),
    uploadSize: v.getUint32(100, true), uploadNext: v.getUint32(104, true), strs,
  };
}

async function upload(board: Board, img: Uint8Array, opts: { stopAt?: number; dropAt?: number } = {}) {
  const sha = createHash('sha256').update(img).digest();
  const begin = await board.ask(0x10, 1, cat(u32(img.length), sha));
  assert.is(begin.type, 0x90);
  let next = begin.view.getUint32(0, true);
  const maxChunk = begin.view.getUint32(4, true), window = begin.view.getUint16(8, true);
  const first = next;
  let seq = 2, dropped = false, rewinds = 0;
  let sent = next;
  const stop = opts.stopAt ?? img.length;
  let inflight = 0;
  while (next < stop) {
    while (inflight < window && sent < stop) {
      const n = Math.min(maxChunk, img.length - sent);
      // a lost chunk: the device never sees it, so no acknowledgement comes for it
      if (opts.dropAt !== undefined && !dropped && sent >= opts.dropAt) dropped = true;
      else { board.send(0x11, seq & 0xff, cat(u32(sent), img.subarray(sent, sent + n))); inflight++; }
      seq++; sent += n;
    }
    const ack = await board.next();
    assert.is(ack.type, 0x91, `ack type 0x${ack.type.toString(16)}`);
    inflight--;
    const got = ack.view.getUint32(4, true);
    if (got < sent && inflight === 0) { sent = got; rewinds++; } // go-back-N: resend from what the device has
    next = got;
  }
  return { first, next, rewinds, maxChunk, window };
}

test('HELLO, INFO, upload with a window, resume by SHA-256, go-back-N, VERIFY, COMMIT, RESET boots it', async () => {
  const { board, proc } = stdioBoard(join(dir, 'a.bin'));
  try {
    board.write(new Uint8Array(64).fill(0xff)); // line noise from a floating line: ignored while undecided
    board.write(Uint8Array.of(0));
    const hello = await board.ask(0x01, 7, Uint8Array.of(1, 0, 0x00, 0x10));
    assert.is(hello.type, 0x81);
    assert.is(hello.seq, 7);
    assert.is(hello.view.getUint16(2, true), 2);
    const maxFrame = hello.view.getUint32(4, true);
    assert.ok(maxFrame >= 256);
    let info = parseInfo(await board.ask(0x02, 8));
    assert.equal([info.board, info.capacity, info.erase, info.booted], [2, 65536, 4096, 0xff]);
    assert.equal(info.strs, ['0.1.0', '0.9.0', 'esp32']);

    const img = new Uint8Array(readFileSync(join(VEC, 'small.efimg')));
    const sha = createHash('sha256').update(img).digest('hex');
    // VERIFY cannot be skipped; COMMIT before it is refused
    expectError(await board.ask(0x12, 9), 16, 'VERIFY without upload');
    const part = await upload(board, img, { stopAt: 8192 });
    assert.is(part.first, 0);
    expectError(await board.ask(0x12, 10), 19, 'VERIFY before the end');
    expectError(await board.ask(0x13, 11), 21, 'COMMIT before VERIFY');
    info = parseInfo(await board.ask(0x02, 12));
    assert.equal([info.uploadSha, info.uploadSize, info.uploadNext, info.b], [sha, img.length, part.next, 0].slice(0, 3).concat([info.b]));
    // a new host: the same image resumes where the device is, with a chunk lost on the way
    const rest = await upload(board, img, { dropAt: 8192 });
    assert.is(rest.first, part.next, 'resume offset');
    assert.ok(rest.rewinds >= 1, 'the lost chunk made the host go back');
    assert.is(rest.next, img.length);
    const ver = await board.ask(0x12, 13);
    assert.is(ver.type, 0x92);
    assert.is(Buffer.from(ver.payload.subarray(4, 36)).toString('hex'), sha);
    const commit = await board.ask(0x13, 14);
    assert.equal([commit.type, commit.payload[0]], [0x93, 0]);
    const reset = await board.ask(0x16, 15);
    assert.is(reset.type, 0x96);
    await board.waitText(/edge-flash 0\.1\.0 on esp32.*\n> $/s);
    board.write(Uint8Array.of(0));
    info = parseInfo(await board.ask(0x02, 16));
    assert.equal([info.booted, info.a, info.bootedSha, info.flags & 1], [0, 5, sha, 1]);
    // a different image starts over at 0
    const other = new Uint8Array(readFileSync(join(VEC, 'small-signed.efimg')));
    const b2 = await board.ask(0x10, 17, cat(u32(other.length), createHash('sha256').update(other).digest()));
    assert.is(b2.view.getUint32(0, true), 0);
    // and the image that runs is untouched by it: ROLLBACK has nothing to go back to
    expectError(await board.ask(0x15, 18), 24, 'ROLLBACK with no previous');
  } finally {
    proc.kill();
  }
});

test('VERIFY gives each image defect its own error, and COMMIT refuses what did not verify', async () => {
  const { board, proc } = stdioBoard(join(dir, 'v.bin'));
  try {
    board.write(Uint8Array.of(0));
    for (const [file, code] of [['wrong-board.efimg', 'wrong_board'], ['bit-flipped.efimg', 'section_crc'], ['bad-tokenizer.efimg', 'tokenizer']]) {
      const img = new Uint8Array(readFileSync(join(VEC, file)));
      await upload(board, img);
      const e = expectError(await board.ask(0x12, 1), 23, file);
      assert.ok(e.msg.startsWith(`${code}: `), `${file}: ${e.msg}`);
      expectError(await board.ask(0x13, 2), 21, `${file}: COMMIT`);
    }
    // the bytes arrive whole but are not the image the host announced
    const img = new Uint8Array(readFileSync(join(VEC, 'small.efimg')));
    const begin = await board.ask(0x10, 3, cat(u32(img.length), new Uint8Array(32).fill(7)));
    assert.is(begin.view.getUint32(0, true), 0);
    for (let at = 0; at < img.length; at += 4096) {
      const ack = await board.ask(0x11, 4, cat(u32(at), img.subarray(at, at + 4096)));
      assert.is(ack.type, 0x91);
    }
    expectError(await board.ask(0x12, 5), 22, 'SHA-256 of another image');
    // a chunk past the announced end
    expectError(await board.ask(0x11, 6, cat(u32(img.length - 2), Uint8Array.of(1, 2, 3))), 18, 'chunk past the end');
    const info = parseInfo(await board.ask(0x02, 7));
    assert.is(info.booted, 0xff, 'nothing was committed');
  } finally {
    proc.kill();
  }
});

test('bad frames each get their own ERROR and the runtime keeps serving', async () => {
  const { board, proc } = stdioBoard(join(dir, 'b.bin'));
  try {
    board.write(Uint8Array.of(0));
    const good = body(0x01, 1, Uint8Array.of(1, 0, 0, 1));
    const badCrc = good.slice(); badCrc[3] ^= 0x40;
    board.write(wire(badCrc));
    expectError(await board.next(), 2, 'bad CRC');
    board.write(wire(body(0x55, 2, new Uint8Array())));
    let e = expectError(await board.next(), 3, 'unknown type');
    assert.is(e.arg, 0x55);
    board.write(wire(body(0x02, 3, Uint8Array.of(1))));
    e = expectError(await board.next(), 4, 'INFO with a payload');
    assert.is(e.arg, 1);
    board.write(wire(body(0x01, 4, Uint8Array.of(1))));
    expectError(await board.next(), 4, 'short HELLO');
    board.write(Uint8Array.of(3, 1, 0)); // a 2-byte body
    expectError(await board.next(), 1, 'body under 6 bytes');
    board.write(Uint8Array.of(5, 1, 2, 0)); // a code byte promising more than the frame has
    expectError(await board.next(), 1, 'COBS');
    board.write(new Uint8Array(20000).fill(7));
    board.write(Uint8Array.of(0));
    e = expectError(await board.next(), 5, 'oversized');
    expectError(await board.ask(0x10, 5, cat(u32(1 << 20), new Uint8Array(32))), 17, 'image larger than the slot');
    expectError(await board.ask(0x10, 6, cat(u32(10), new Uint8Array(32))), 25, 'image too small');
    expectError(await board.ask(0x11, 7, cat(u32(0), Uint8Array.of(1))), 16, 'chunk without upload');
    expectError(await board.ask(0x20, 8, cat(u32(1), new Uint8Array(new Float32Array([-1, 0.9]).buffer), Uint8Array.of(0, 0, 0, 0))), 35, 'negative temperature');
    expectError(await board.ask(0x20, 9, cat(u32(1), new Uint8Array(new Float32Array([0, 0.9]).buffer), Uint8Array.of(0, 0, 0, 0), new TextEncoder().encode('hi'))), 32, 'CHAT without an image');
    const hello = await board.ask(0x01, 10, Uint8Array.of(1, 0, 0, 1));
    assert.is(hello.type, 0x81, 'still serving');
    expectError(await board.ask(0x01, 11, Uint8Array.of(2, 0, 0, 1)), 6, 'another protocol version');
  } finally {
    proc.kill();
  }
});

test('terminal mode: banner, echo, /help, /temp, /info, a prompt answered with an error line', async () => {
  const { board, proc } = stdioBoard(join(dir, 'c.bin'));
  try {
    await board.waitText(/type a prompt, \/help for commands\r\n> $/, 5000, true);
    board.raw = '';
    board.write(new TextEncoder().encode('/helq\x7fp\r\n'));
    await board.waitText(/\/new  a new conversation\r\n> $/, 5000, true);
    assert.match(board.raw, /^\/helq\x08 \x08p\r\n/);
    board.raw = '';
    board.write(new TextEncoder().encode('/temp 0.8\r/seed 42\r/temp x\r'));
    await board.waitText(/temperature 0\.8\r\n> \/seed 42\r\nseed 42\r\n> \/temp x\r\nerror: unknown command or bad value: \/temp x .*\r\n> $/, 5000, true);
    board.raw = '';
    board.write(new TextEncoder().encode('/info\r'));
    await board.waitText(/board: esp32 \(id 2\)\r\nruntime: 0\.1\.0\r\nwasm3: 0\.9\.0\r\n.*slot A: empty, slot B: empty, booted: none\r\n.*> $/s, 5000, true);
    board.raw = '';
    board.write(new TextEncoder().encode('Once upon a time\r'));
    await board.waitText(/error: no image is running: flash one \(edge-flash flash\)\r\n> $/, 5000, true);
    // a framed host after a person: 0x00 switches at once
    board.write(Uint8Array.of(0));
    assert.is((await board.ask(0x01, 1, Uint8Array.of(1, 0, 0, 1))).type, 0x81);
  } finally {
    proc.kill();
  }
});

test('BYE ends the session: reply, banner, a person is served; the idle rule: a line after a quiet second, but not a frame', async () => {
  const { board, proc } = stdioBoard(join(dir, 'bye.bin'));
  const te = new TextEncoder();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    board.write(Uint8Array.of(0));
    assert.is((await board.ask(0x01, 1, Uint8Array.of(1, 0, 0, 1))).type, 0x81);
    board.raw = '';
    const bye = await board.ask(0x03, 2);
    assert.is(bye.type, 0x83, 'BYE reply');
    assert.is(bye.seq, 2);
    assert.is(bye.payload.length, 0);
    await board.waitText(/type a prompt, \/help for commands\r\n> $/, 5000, true);
    // undecided again: a person's Enter shows the banner, then /info is echoed and answered
    board.raw = '';
    board.write(te.encode('\r'));
    await board.waitText(/^\r\nedge-flash 0\.1\.0 on esp32: type a prompt, \/help for commands\r\n> $/, 5000, true);
    board.raw = '';
    board.write(te.encode('/info\r'));
    await board.waitText(/^\/info\r\nboard: esp32 \(id 2\)\r\n.*> $/s, 5000, true);
    // BYE with a payload is refused as any frame of the wrong length
    board.write(Uint8Array.of(0));
    expectError(await board.ask(0x03, 3, Uint8Array.of(1)), 4, 'BYE with a payload');
    // framed, then a pause: a host's frame after it (0x00 first) is served as ever
    await sleep(1200);
    board.write(Uint8Array.of(0));
    assert.is((await board.ask(0x02, 4)).type, 0x82, 'INFO after a quiet second');
    // a pause, then a burst that starts like a line but holds a byte no keyboard sends: framing goes on
    await sleep(1200);
    board.write(cat(te.encode('ab'), Uint8Array.of(0x01, 0x0d, 0)));
    expectError(await board.next(), 1, 'not a person: a bad frame');
    assert.is((await board.ask(0x02, 5)).type, 0x82, 'still framed');
    // a pause, then a typed line (with a Backspace): the person gets the terminal, the banner and the answer
    await sleep(1200);
    board.raw = '';
    board.write(te.encode('/infx\x7fo\r'));
    await board.waitText(/^\r\nedge-flash 0\.1\.0 on esp32: type a prompt, \/help for commands\r\n> \/info\r\nboard: esp32 \(id 2\)\r\n.*last reply: 0\.000 tok\/s\r\n> $/s, 5000, true);
    // and a host after the person, as after any person
    board.write(Uint8Array.of(0));
    assert.is((await board.ask(0x01, 6, Uint8Array.of(1, 0, 0, 1))).type, 0x81);
    // a typed line with no pause before it is a frame's bytes (no terminal)
    board.raw = '';
    board.write(te.encode('/info\r'));
    await sleep(300);
    assert.not.match(board.raw, /board: esp32/, 'no pause: no person');
  } finally {
    proc.kill();
  }
});

test('over a pseudo-terminal: the path on stdout, HELLO and INFO through it', async () => {
  const proc = spawn(bin, ['--slot-file', join(dir, 'd.bin'), ...BOARD, '--serve', '--pty'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line: string = await new Promise((res, rej) => {
      let s = '';
      proc.stdout!.on('data', (d: Buffer) => { s += d; if (s.includes('\n')) res(s.split('\n')[0]); });
      setTimeout(() => rej(new Error('no pty line')), 5000);
    });
    const path = JSON.parse(line).pty as string;
    assert.match(path, /^\/dev\/pts\/\d+$/);
    // non-blocking: a read with nothing there throws EAGAIN instead of hanging the suite
    const fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
    const board = new Board((b) => writeSync(fd, b), () => closeSync(fd));
    const buf = Buffer.alloc(65536);
    const pump = async () => {
      for (let i = 0; i < 100 && !board.frames.length; i++) {
        await new Promise((r) => setTimeout(r, 20));
        try { const n = readSync(fd, buf, 0, buf.length, null); if (n > 0) board.feed(buf.subarray(0, n)); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e; }
      }
    };
    board.write(Uint8Array.of(0));
    board.send(0x01, 1, Uint8Array.of(1, 0, 0, 1));
    await pump();
    const hello = await board.next(100);
    assert.is(hello.type, 0x81);
    board.send(0x02, 2);
    await pump();
    assert.equal(parseInfo(await board.next(100)).strs, ['0.1.0', '0.9.0', 'esp32']);
    board.close();
  } finally {
    proc.kill();
  }
});

test.run();
