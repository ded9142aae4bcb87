// A TEST DOUBLE, not a board: a TypeScript stand-in for the C runtime that speaks docs/protocol.md over
// a socket, so that the host's layers (transport, framing, client, commands, verbs) are tested before
// and besides the real virtual board (boards/runtime/, tested end to end by its own suites). It keeps
// the protocol's device rules (go-back-N acknowledgements, resume by SHA-256, VERIFY with the image
// reader's checks, COMMIT, RESET) and injects faults: dropped and flipped bytes, a disconnect.
// Its CHAT streams a token script the test gives it; it runs no model.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boardByName, type BoardProfile } from '../host/board/boards.ts';
import { ERR, MIN_IMAGE_SIZE, PROTOCOL_VERSION, T, TYPE_BY_NAME, encodePayload, type Fields } from '../host/board/frames.ts';
import { Decoder, encodeFrame, type FrameEvent } from '../host/board/framing.ts';
import { ImageError } from '../host/image/format.ts';
import { readImage } from '../host/image/read.ts';
import { sha256, toHex } from '../host/image/sign.ts';

export interface Faults {
  drop?: number;            // probability a byte from the host is lost
  flip?: number;            // probability a byte from the host has one bit flipped
  replyDrop?: number;       // the same for bytes to the host
  replyFlip?: number;
  disconnectAtByte?: number; // close the connection after this many received bytes
  seed?: number;
}

export interface FakeOptions {
  board?: string;
  maxFrame?: number;
  window?: number;
  ackDelayMs?: number;                    // hold every acknowledgement this long (to see the window fill)
  silent?: boolean;                        // never answer (a board without the runtime)
  storageFailAt?: number;                  // a write reaching this image offset fails
  corruptStorage?: boolean;                // one stored byte rots after it is written (VERIFY must catch it)
  tokens?: (prompt: string) => Array<{ id: number; text: string }>;
  tokenDelayMs?: number;
}

interface Chat { cancelled: boolean; seq: number; cancelSeq: number; gone?: boolean }

const SLOT_EMPTY = 0, SLOT_RECEIVING = 1, SLOT_WRITTEN = 2, SLOT_VERIFIED = 3, SLOT_PENDING = 4, SLOT_CONFIRMED = 5;

export class FakeDeviceForTests {
  readonly profile: BoardProfile;
  readonly maxFrame: number;
  readonly window: number;
  slots: Array<{ bytes: Uint8Array; size: number; state: number; sha: Uint8Array }>;
  booted: number | null = null;
  upload: { sha: Uint8Array; size: number; next: number; slot: number } | null = null;
  faults: Faults = {};
  received = 0;                 // bytes received over all connections
  maxUnacked = 0;               // the most chunks that arrived while acknowledgements were held
  chunkFrames = 0;
  written: Array<{ offset: number; len: number }> = [];   // the chunks written, in order (their sizes: the host's adaptation)
  badFrames = 0;
  resets = 0;
  private server: Server | null = null;
  private dir = '';
  private sockets = new Set<Socket>();
  path = '';

  constructor(readonly opts: FakeOptions = {}) {
    this.profile = boardByName(opts.board ?? 'esp32');
    this.maxFrame = opts.maxFrame ?? 1024;
    this.window = opts.window ?? 4;
    this.slots = [0, 1].map(() => ({ bytes: new Uint8Array(0), size: 0, state: SLOT_EMPTY, sha: new Uint8Array(32) }));
  }

  // Listens on a Unix socket; connect() gives the host's end.
  async listen(): Promise<string> {
    this.dir = mkdtempSync(join(tmpdir(), 'ef-fake-'));
    this.path = join(this.dir, 'board.sock');
    this.server = createServer((s) => this.serve(s));
    await new Promise<void>((r) => this.server!.listen(this.path, r));
    return this.path;
  }

  connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = connect(this.path, () => resolve(s));
      s.once('error', reject);
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => {});
    let rng = (this.faults.seed ?? 1) >>> 0;
    const rand = () => { // mulberry32
      rng = (rng + 0x6d2b79f5) >>> 0;
      let t = rng;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    };
    let decoder = new Decoder('to_device', this.maxFrame);
    let chatAbort: Chat | null = null;
    const out = (bytes: Uint8Array) => {
      if (sock.destroyed) return;
      const b = Uint8Array.from(bytes);
      const f = this.faults;
      const kept: number[] = [];
      for (const x of b) {
        if (f.replyDrop && rand() < f.replyDrop) continue;
        kept.push(f.replyFlip && rand() < f.replyFlip ? x ^ (1 << Math.floor(rand() * 8)) : x);
      }
      sock.write(Uint8Array.from(kept));
    };
    const send = (name: string, seq: number, fields: Fields) => out(encodeFrame(TYPE_BY_NAME[name].code, seq, encodePayload(TYPE_BY_NAME[name], fields)));
    const error = (reqType: number, seq: number, code: number, arg: number, message: string) =>
      send('ERROR', seq, { req_type: reqType, code, arg, message: new TextEncoder().encode(message) });
    const reply = (f: FrameEvent, fields: Fields) => send(TYPE_BY_NAME[f.type.name].name + '_REPLY', f.seq, fields);

    sock.write(new TextEncoder().encode(`edge-flash fake device (test double) on ${this.profile.name}: type a prompt, /help for commands\r\n> `));
    let started = false;
    sock.on('data', (buf: Buffer) => {
      if (this.opts.silent) return;
      const f = this.faults;
      const bytes: number[] = [];
      for (const x of buf) {
        this.received++;
        if (f.disconnectAtByte !== undefined && this.received >= f.disconnectAtByte) {
          f.disconnectAtByte = undefined;
          sock.destroy();
          return;
        }
        if (f.drop && rand() < f.drop) continue;
        bytes.push(f.flip && rand() < f.flip ? x ^ (1 << Math.floor(rand() * 8)) : x);
      }
      for (const e of decoder.push(Uint8Array.from(bytes))) {
        if (e.kind === 'skip') continue;
        if (!started) {
          started = true;
          out(Uint8Array.of(0));
        }
        if (e.kind === 'error') {
          this.badFrames++;
          error(e.reqType, e.seq, e.code, e.arg, '');
          continue;
        }
        if (chatAbort && e.type.code !== T.CANCEL && e.type.code !== T.HELLO && e.type.code !== T.INFO && e.type.code !== T.BYE) {
          error(e.type.code, e.seq, ERR.BUSY, 0, 'a chat is running');
          continue;
        }
        this.handle(e, reply, error, () => chatAbort, (c) => (chatAbort = c), send, () => {
          decoder = new Decoder('to_device', this.maxFrame);
          started = false;
        });
      }
    });
  }

  private handle(
    f: FrameEvent,
    reply: (f: FrameEvent, fields: Fields) => void,
    error: (reqType: number, seq: number, code: number, arg: number, message: string) => void,
    getChat: () => Chat | null,
    setChat: (c: Chat | null) => void,
    send: (name: string, seq: number, fields: Fields) => void,
    restart: () => void,
  ): void {
    const v = f.fields;
    const fail = (code: number, arg: number, msg: string) => error(f.type.code, f.seq, code, arg, msg);
    const cap = this.profile.imageCapacity;
    const inactive = this.booted === 0 ? 1 : 0;
    switch (f.type.name) {
      case 'HELLO':
        if (v.protocol_version !== PROTOCOL_VERSION) return fail(ERR.VERSION, PROTOCOL_VERSION, `protocol ${v.protocol_version} not supported`);
        return reply(f, { protocol_version: PROTOCOL_VERSION, board_id: this.profile.id, max_frame: this.maxFrame });
      case 'INFO':
        return reply(f, {
          protocol_version: PROTOCOL_VERSION, board_id: this.profile.id, max_frame: this.maxFrame, slot_capacity: cap, erase_block: this.profile.flash.eraseBlock,
          heap_free: 100000, heap_largest: 80000, linear_memory: this.booted === null ? 0 : 65536, last_tok_per_s_x1000: 0,
          booted_slot: this.booted ?? 0xff, slot_a_state: this.slots[0].state, slot_b_state: this.slots[1].state,
          flags: this.booted === null ? 0 : 1 | (this.slots[this.booted].state === SLOT_PENDING ? 2 : 0),
          booted_sha256: this.booted === null ? new Uint8Array(32) : this.slots[this.booted].sha,
          upload_sha256: this.upload?.sha ?? new Uint8Array(32), upload_size: this.upload?.size ?? 0, upload_next: this.upload?.next ?? 0,
          strings: ['fake-test-double', '0.9.0', this.profile.name],
        });
      case 'UPLOAD_BEGIN': {
        const size = v.image_size as number, sha = v.sha256 as Uint8Array;
        if (size > cap) return fail(ERR.TOO_LARGE, cap, `image is ${size} bytes, the slot holds ${cap}`);
        if (size < MIN_IMAGE_SIZE) return fail(ERR.BAD_SIZE, MIN_IMAGE_SIZE, `image is ${size} bytes`);
        this.committed = null;
        if (!this.upload || this.upload.size !== size || toHex(this.upload.sha) !== toHex(sha) || this.upload.slot !== inactive) {
          this.upload = { sha, size, next: 0, slot: inactive };
          this.slots[inactive] = { bytes: new Uint8Array(size).fill(0xff), size, state: SLOT_RECEIVING, sha: new Uint8Array(32) };
        }
        return reply(f, { next_offset: this.upload.next, max_chunk: this.maxFrame - 10, window: this.window });
      }
      case 'UPLOAD_CHUNK': {
        this.chunkFrames++;
        const u = this.upload;
        if (!u) return fail(ERR.NO_UPLOAD, 0, 'no UPLOAD_BEGIN');
        const offset = v.offset as number, data = v.data as Uint8Array;
        if (offset + data.byteLength > u.size) return fail(ERR.BAD_OFFSET, u.size, `chunk at ${offset} + ${data.byteLength} ends past the image (${u.size} bytes)`);
        if (offset === u.next) {
          if (this.opts.storageFailAt !== undefined && offset + data.byteLength > this.opts.storageFailAt) {
            return fail(ERR.STORAGE, this.opts.storageFailAt, `write at ${this.opts.storageFailAt} failed`);
          }
          this.slots[u.slot].bytes.set(data, offset);
          this.written.push({ offset, len: data.byteLength });
          if (this.opts.corruptStorage && offset === 0) this.slots[u.slot].bytes[Math.min(100, data.byteLength - 1)] ^= 0x10;
          u.next += data.byteLength;
          if (u.next === u.size) this.slots[u.slot].state = SLOT_WRITTEN;
        }
        const ack = { offset, next_offset: u.next };
        if (this.opts.ackDelayMs) {
          this.unacked++;
          this.maxUnacked = Math.max(this.maxUnacked, this.unacked);
          setTimeout(() => {
            this.unacked--;
            reply(f, ack);
          }, this.opts.ackDelayMs);
          return;
        }
        return reply(f, ack);
      }
      case 'VERIFY': {
        const u = this.upload;
        if (!u) return fail(ERR.NO_UPLOAD, 0, 'no upload');
        if (u.next < u.size) return fail(ERR.INCOMPLETE, u.next, `${u.next} of ${u.size} bytes received`);
        const bytes = this.slots[u.slot].bytes;
        const digest = sha256(bytes);
        if (toHex(digest) !== toHex(u.sha)) return fail(ERR.SHA_MISMATCH, 0, `read back ${toHex(digest).slice(0, 16)}, expected ${toHex(u.sha).slice(0, 16)}`);
        try {
          readImage(bytes, { board: this.profile });
        } catch (e) {
          if (e instanceof ImageError) return fail(ERR.IMAGE, 0, `${e.code}: ${e.message}`);
          throw e;
        }
        this.slots[u.slot].state = SLOT_VERIFIED;
        this.slots[u.slot].sha = digest;
        return reply(f, { image_size: u.size, sha256: digest });
      }
      case 'COMMIT': {
        const u = this.upload;
        if (!u && this.committed !== null && this.slots[this.committed].state === SLOT_PENDING) return reply(f, { slot: this.committed });
        if (!u || this.slots[u.slot].state !== SLOT_VERIFIED) return fail(ERR.NOT_VERIFIED, 0, 'VERIFY first');
        this.slots[u.slot].state = SLOT_PENDING;
        this.upload = null;
        this.committed = u.slot;
        return reply(f, { slot: u.slot });
      }
      case 'CONFIRM':
        if (this.booted === null) return fail(ERR.NO_IMAGE, 0, 'nothing booted');
        this.slots[this.booted].state = SLOT_CONFIRMED;
        return reply(f, { slot: this.booted });
      case 'ROLLBACK': {
        const other = this.booted === 0 ? 1 : 0;
        if (this.slots[other].state !== SLOT_CONFIRMED) return fail(ERR.NO_PREVIOUS, 0, 'no previous image');
        return reply(f, { slot: other });
      }
      case 'RESET': {
        reply(f, {});
        this.resets++;
        const pending = this.slots.findIndex((s) => s.state === SLOT_PENDING);
        if (pending >= 0) {
          this.booted = pending;
          this.slots[pending].state = SLOT_CONFIRMED; // the double's "self-test" always passes
        }
        restart();
        return;
      }
      case 'CHAT': {
        if (this.booted === null) return fail(ERR.NO_IMAGE, 0, 'no image booted');
        const t = v.temperature as number, p = v.top_p as number;
        if (!(t >= 0) || !Number.isFinite(t) || !(p >= 0 && p <= 1) || (v.mode as number) > 1) return fail(ERR.BAD_SETTINGS, 0, 'temperature or top_p out of range');
        const prompt = new TextDecoder().decode(v.prompt as Uint8Array);
        const script = (this.opts.tokens ?? ((s: string) => s.split('').map((c, i) => ({ id: 100 + i, text: c.toUpperCase() }))))(prompt);
        const steps = v.steps as number;
        const run = script.slice(0, steps > 0 ? steps : script.length);
        const chat: Chat = { cancelled: false, seq: f.seq, cancelSeq: 0 };
        setChat(chat);
        reply(f, { prompt_tokens: prompt.length, context: 256 });
        const t0 = performance.now();
        let i = 0;
        const stats = (reason: number) => send('STATS', f.seq, {
          reason, prompt_tokens: prompt.length, tokens: i, prefill_us: 1000, decode_us: Math.round((performance.now() - t0) * 1000) + 1,
          linear_memory: 65536, heap_free: 100000, heap_largest: 80000,
        });
        const step = () => {
          if (chat.gone) return setChat(null);   // BYE: the reply stops, nobody reads it
          if (chat.cancelled) {
            stats(2);
            setChat(null);
            send('CANCEL_REPLY', chat.cancelSeq, { was_running: 1 });
            return;
          }
          if (i >= run.length) {
            stats(0);
            setChat(null);
            return;
          }
          send('TOKEN', f.seq, { token: run[i].id, text: new TextEncoder().encode(run[i].text) });
          i++;
          setTimeout(step, this.opts.tokenDelayMs ?? 0);
        };
        step();
        return;
      }
      case 'BYE': {
        // the end of the session (docs/protocol.md section 1): a reply stops, the reply, undecided again
        const c = getChat();
        if (c) c.gone = true;
        setChat(null);
        reply(f, {});
        restart();
        return;
      }
      case 'CANCEL': {
        const c = getChat();
        if (!c) return reply(f, { was_running: 0 });
        c.cancelled = true;
        c.cancelSeq = f.seq;
        return;
      }
    }
  }

  private unacked = 0;
  private committed: number | null = null;
}
