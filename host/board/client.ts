// The protocol client (docs/protocol.md sections 3, 8): requests with sequence numbers, replies and
// errors matched to them, named timeouts that scale with what a request moves, and the device's
// unsolicited frames (TOKEN, STATS, LOG) handed to listeners. Errors read as esptool's do:
// "failed to write chunk 12: CRC mismatch".
import { UserError } from '../errors.ts';
import {
  ERR, ERROR_TEXT, HOST_MAX_FRAME, MIN_MAX_FRAME, PROTOCOL_VERSION, REPLY_BIT, T, TYPE_BY_CODE, TYPE_BY_NAME,
  encodePayload, errorName, type ErrorName, type Fields,
} from './frames.ts';
import { Decoder, encodeFrame, type DecodeEvent, type FrameEvent } from './framing.ts';
import type { Transport } from './transport.ts';

// Named timeouts, in ms; the ones that move bytes add their time on the line (10 bits a byte).
export const TIMEOUTS = {
  helloTry: 500,          // one HELLO; the client tries helloTries times, so a silent board is named within 2 s
  helloTries: 4,
  command: 2000,          // INFO, COMMIT, CONFIRM, ROLLBACK, RESET, CANCEL
  uploadBegin: 3000,
  chunkBase: 2000,        // + the window's bytes on the line
  chunkTries: 5,          // acknowledgement timeouts in a row before giving up
  verifyBase: 3000,       // + the image read back and hashed at verifyBytesPerSecond
  verifyBytesPerSecond: 64 * 1024,
  chatReplyBase: 10000,   // + 1 ms a prompt byte
  tokenGap: 30000,        // between two TOKEN frames
  reboot: 10000,          // RESET until HELLO answers again
  byeTry: 300,            // BYE, the end of a session: one try, and byeTries of them (a noisy line)
  byeTries: 3,
} as const;

export function lineMs(bytes: number, baud: number): number {
  return (bytes * 10 * 1000) / baud;
}

// An error the board reported (code from the catalogue), or a request it did not answer.
export class BoardError extends UserError {
  constructor(message: string, readonly code: number | null, hint?: string) {
    super(message, hint);
    this.name = 'BoardError';
  }
  get codeName(): ErrorName | null {
    return this.code === null ? null : (errorName(this.code) as ErrorName);
  }
}

export function errorMessage(code: number, message: string): string {
  const name = errorName(code) as ErrorName;
  const text = ERROR_TEXT[name] ?? name;
  return message ? `${text}: ${message}` : text;
}

interface Waiter {
  reqType: number;
  what: string;
  resolve: (f: Fields) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  garbled: () => boolean;       // the board got our frame corrupt: true if the request is to be sent again
  idempotent: boolean;
}

// Requests the board may see twice (docs/protocol.md section 3); CHAT is not one (it would answer twice).
const IDEMPOTENT = new Set(['HELLO', 'INFO', 'BYE', 'UPLOAD_BEGIN', 'VERIFY', 'COMMIT', 'CONFIRM', 'ROLLBACK', 'RESET', 'CANCEL']);
export const FRAMING_ERRORS: ReadonlySet<number> = new Set([ERR.BAD_FRAME, ERR.BAD_CRC, ERR.FRAME_TOO_LARGE]);

export interface Hello { protocolVersion: number; boardId: number; maxFrame: number }

export class Client {
  readonly decoder = new Decoder('to_host', HOST_MAX_FRAME);
  deviceMaxFrame = MIN_MAX_FRAME;
  badFrames = 0;              // corrupt frames received (they are never answered)
  deviceErrors = 0;           // ERROR frames that matched no request (the device saw a corrupt frame of ours)
  private seq = 0;
  private waiters = new Map<number, Waiter>();
  private listeners = new Map<number, Array<(f: FrameEvent) => void>>();
  private anyListeners: Array<(e: DecodeEvent) => void> = [];
  private closeListeners: Array<(why: string) => void> = [];
  closed: string | null = null;
  private greeted = false;      // HELLO answered: the board is framed, and close() ends the session with BYE
  private ended: Promise<void> | null = null;
  private ending = false;       // BYE is under way: other frames are no longer sent (an upload's pump stops)

  constructor(readonly transport: Transport, readonly baud = 115200) {
    transport.onData((b) => {
      for (const e of this.decoder.push(b)) this.dispatch(e);
    });
    transport.onClose((why) => {
      this.closed = why;
      const err = new BoardError(`${transport.name}: the board went away (${why})`, null, 'is it still connected? run the command again to continue');
      for (const [, w] of this.waiters) {
        clearTimeout(w.timer);
        w.reject(err);
      }
      this.waiters.clear();
      for (const f of this.closeListeners) f(why);
    });
  }

  on(typeName: string, fn: (f: FrameEvent) => void): () => void {
    const code = T[typeName];
    const list = this.listeners.get(code) ?? [];
    list.push(fn);
    this.listeners.set(code, list);
    return () => this.listeners.set(code, (this.listeners.get(code) ?? []).filter((x) => x !== fn));
  }
  onAny(fn: (e: DecodeEvent) => void): void {
    this.anyListeners.push(fn);
  }
  onClose(fn: (why: string) => void): () => void {
    this.closeListeners.push(fn);
    return () => (this.closeListeners = this.closeListeners.filter((x) => x !== fn));
  }

  // The seq of the request issued last (request() takes it synchronously, before its first await).
  get lastSeq(): number {
    return this.seq;
  }

  private dispatch(e: DecodeEvent): void {
    for (const f of this.anyListeners) f(e);
    if (e.kind === 'skip') return;
    if (e.kind === 'error') {
      this.badFrames++;
      // a reply may have been this frame: a request the board may see twice goes again now, not at its timeout
      for (const [seq, w] of [...this.waiters]) {
        if (!w.idempotent || !w.garbled()) continue;
        this.settle(seq);
        (w.resolve as (x: unknown) => void)('again');
      }
      return;
    }
    const w = this.waiters.get(e.seq);
    if (w && e.type.code === (w.reqType | REPLY_BIT)) {
      this.settle(e.seq);
      w.resolve(e.fields);
      return;
    }
    if (w && e.type.code === T.ERROR && e.fields.req_type === w.reqType) {
      const code = e.fields.code as number;
      this.settle(e.seq);
      if (FRAMING_ERRORS.has(code) && w.garbled()) {
        (w.resolve as (x: unknown) => void)('again');
        return;
      }
      w.reject(new BoardError(`failed to ${w.what}: ${errorMessage(code, new TextDecoder().decode(e.fields.message as Uint8Array))}`, code));
      return;
    }
    if (e.type.code === T.ERROR) this.deviceErrors++;
    for (const f of this.listeners.get(e.type.code) ?? []) f(e);
  }

  private settle(seq: number): void {
    const w = this.waiters.get(seq);
    if (w) clearTimeout(w.timer);
    this.waiters.delete(seq);
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) & 0xff;
    return this.seq;
  }

  // Sends a frame without waiting for anything (UPLOAD_CHUNK in a window, CANCEL); returns its seq.
  async send(typeName: string, fields: Fields = {}, seq = this.nextSeq()): Promise<number> {
    if (this.closed) throw new BoardError(`${this.transport.name}: the board went away (${this.closed})`, null);
    // after BYE nothing else goes out: a frame would make the runtime framed again (Ctrl-C during an upload)
    if (this.ending && typeName !== 'BYE') return seq;
    const t = TYPE_BY_NAME[typeName];
    const payload = encodePayload(t, fields);
    if (payload.byteLength + 6 > this.deviceMaxFrame) throw new Error(`${typeName}: a ${payload.byteLength + 6}-byte frame exceeds the board's max_frame ${this.deviceMaxFrame}`);
    // every frame starts with a 0x00 as well (docs/protocol.md section 1): after a pause the runtime's idle
    // rule takes a burst that does not start with 0x00 for a person's line, and a frame whose delimiter
    // was lost on a noisy line is ended by the next one
    const frame = encodeFrame(t.code, seq, payload);
    const wire = new Uint8Array(frame.byteLength + 1);
    wire.set(frame, 1);
    await this.transport.write(wire);
    return seq;
  }

  // One request and its reply; `what` names it in errors ("failed to <what>: ..."). A request the
  // board may see twice (IDEMPOTENT) is sent again when its reply times out or the board says the
  // frame arrived corrupt.
  async request(typeName: string, fields: Fields, timeoutMs: number, what: string, tries = IDEMPOTENT.has(typeName) ? 3 : 1): Promise<Fields> {
    const t = TYPE_BY_NAME[typeName];
    for (let attempt = 1; ; attempt++) {
      const seq = this.nextSeq();
      const reply = new Promise<Fields | 'again'>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.waiters.delete(seq);
          if (attempt < tries) resolve('again');
          else reject(new BoardError(`failed to ${what}: no answer from ${this.transport.name} within ${(timeoutMs / 1000).toFixed(1)} s${tries > 1 ? ` (${tries} tries)` : ''}`, null));
        }, timeoutMs);
        this.waiters.set(seq, { reqType: t.code, what, resolve, reject, timer, garbled: () => attempt < tries, idempotent: IDEMPOTENT.has(typeName) });
      });
      reply.catch(() => {});   // a send that fails below is the error; the port closing rejects this one too
      try {
        await this.send(typeName, fields, seq);
      } catch (e) {
        this.settle(seq);
        throw e;
      }
      const r = await reply;
      if (r !== 'again') return r;
    }
  }

  // HELLO until answered: a silent board gets a clear line after helloTries * helloTry ms.
  async hello(tries: number = TIMEOUTS.helloTries): Promise<Hello> {
    await this.transport.write(Uint8Array.of(0)); // ends whatever the board printed before us
    let last: Error | undefined;
    for (let i = 0; i < tries; i++) {
      try {
        const r = await this.request('HELLO', { protocol_version: PROTOCOL_VERSION, host_max_frame: HOST_MAX_FRAME }, TIMEOUTS.helloTry, 'say HELLO', 1);
        const h = { protocolVersion: r.protocol_version as number, boardId: r.board_id as number, maxFrame: r.max_frame as number };
        if (h.protocolVersion !== PROTOCOL_VERSION) throw new BoardError(`${this.transport.name} speaks protocol version ${h.protocolVersion}; this edge-flash speaks ${PROTOCOL_VERSION}`, null, 'update the runtime on the board, or edge-flash');
        if (h.maxFrame < MIN_MAX_FRAME) throw new BoardError(`${this.transport.name} announces max_frame ${h.maxFrame}, below the protocol's ${MIN_MAX_FRAME}`, null);
        this.deviceMaxFrame = Math.min(h.maxFrame, HOST_MAX_FRAME);
        this.greeted = true;
        return h;
      } catch (e) {
        if (!(e instanceof BoardError) || e.code !== null || this.closed || !/no answer/.test(e.message)) throw e;
        last = e;
      }
    }
    const s = ((tries * TIMEOUTS.helloTry) / 1000).toFixed(1);
    throw new BoardError(`no answer from ${this.transport.name} within ${s} s (${tries} HELLOs at ${this.baud} baud${this.badFrames ? `, ${this.badFrames} garbled frames` : ''})`, null,
      'is the edge-flash runtime running on it, at this baud rate? (`edge-flash monitor --port ...` shows what it prints)' + (last ? '' : ''));
  }

  // The end of the framed session (docs/protocol.md section 1): BYE, so the runtime is undecided again and
  // a person's terminal on the same port gets its banner; a reply that streams stops. Bounded: a board that
  // does not answer (gone, an older runtime: UNKNOWN_TYPE) costs at most byeTries * byeTry ms. Once.
  end(): Promise<void> {
    if (!this.ended) {
      this.ended = (async () => {
        if (!this.greeted || this.closed) return;
        this.greeted = false;
        this.ending = true;
        await this.request('BYE', {}, TIMEOUTS.byeTry, 'end the session', TIMEOUTS.byeTries).then(() => {}, () => {});
      })();
    }
    return this.ended;
  }

  // BYE, then the port is closed.
  async close(): Promise<void> {
    await this.end();
    return this.transport.close();
  }
}

export function typeName(code: number): string {
  return TYPE_BY_CODE.get(code)?.name ?? `0x${code.toString(16)}`;
}
