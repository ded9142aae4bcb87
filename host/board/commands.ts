// The commands a CLI verb (or a test) calls on a connected board: info, flash (upload with resume and
// a window, VERIFY, COMMIT, RESET), chat (streamed tokens, cancel). Plain functions over a Client.
import { toHex } from '../image/sign.ts';
import { boardById, boardLabel, boardRuns } from './boards.ts';
import { BoardError, Client, FRAMING_ERRORS, TIMEOUTS, errorMessage, lineMs } from './client.ts';
import { CHUNK_OVERHEAD, ERR, LOG_LEVELS, SLOT_STATES, STATS_REASONS, T } from './frames.ts';
import type { FrameEvent } from './framing.ts';
import { PortGoneError } from './transport.ts';
import { UserError } from '../errors.ts';
import { sha256 } from '../image/sign.ts';
import { readImage } from '../image/read.ts';

export interface BoardInfo {
  protocolVersion: number;
  boardId: number;
  board: string;                 // the profile's name, or the board's own
  maxFrame: number;
  slotCapacity: number;
  eraseBlock: number;
  heapFree: number;
  heapLargest: number;
  linearMemory: number;
  lastTokPerS: number;
  bootedSlot: 'A' | 'B' | null;
  slots: { A: string; B: string };
  appLoaded: boolean;
  pending: boolean;
  bootedSha256: string | null;
  upload: { sha256: string; size: number; next: number } | null;
  runtimeVersion: string;
  wasm3Version: string;
}

const zeros = (b: Uint8Array) => b.every((x) => x === 0);
const slotName = (s: number) => (s === 0 ? 'A' : s === 1 ? 'B' : null);

export async function info(client: Client): Promise<BoardInfo> {
  const r = await client.request('INFO', {}, TIMEOUTS.command, 'read the board INFO');
  const [runtimeVersion, wasm3Version, boardName] = r.strings as string[];
  const up = r.upload_sha256 as Uint8Array;
  return {
    protocolVersion: r.protocol_version as number,
    boardId: r.board_id as number,
    board: boardById(r.board_id as number)?.name ?? boardName,
    maxFrame: r.max_frame as number,
    slotCapacity: r.slot_capacity as number,
    eraseBlock: r.erase_block as number,
    heapFree: r.heap_free as number,
    heapLargest: r.heap_largest as number,
    linearMemory: r.linear_memory as number,
    lastTokPerS: (r.last_tok_per_s_x1000 as number) / 1000,
    bootedSlot: slotName(r.booted_slot as number),
    slots: { A: SLOT_STATES[r.slot_a_state as number] ?? `state ${r.slot_a_state}`, B: SLOT_STATES[r.slot_b_state as number] ?? `state ${r.slot_b_state}` },
    appLoaded: ((r.flags as number) & 1) !== 0,
    pending: ((r.flags as number) & 2) !== 0,
    bootedSha256: zeros(r.booted_sha256 as Uint8Array) ? null : toHex(r.booted_sha256 as Uint8Array),
    upload: zeros(up) && r.upload_size === 0 ? null : { sha256: toHex(up), size: r.upload_size as number, next: r.upload_next as number },
    runtimeVersion, wasm3Version,
  };
}

export function formatInfo(i: BoardInfo): string {
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  return [
    `board:          ${i.board} (id ${i.boardId})`,
    `runtime:        ${i.runtimeVersion}, wasm3 ${i.wasm3Version}, protocol ${i.protocolVersion}, max frame ${i.maxFrame} bytes`,
    `slots:          A ${i.slots.A}, B ${i.slots.B}; booted ${i.bootedSlot ?? 'none'}${i.pending ? ' (pending)' : ''}; ${i.slotCapacity} bytes each, erase block ${i.eraseBlock}`,
    `image:          ${i.bootedSha256 ? `SHA-256 ${i.bootedSha256}` : 'none'}${i.appLoaded ? '' : ' (no app loaded)'}`,
    `heap:           ${kib(i.heapFree)} free, largest block ${kib(i.heapLargest)}`,
    `linear memory:  ${kib(i.linearMemory)}`,
    `last reply:     ${i.lastTokPerS ? `${i.lastTokPerS.toFixed(2)} tok/s` : 'none yet'}`,
    ...(i.upload ? [`upload:         ${i.upload.next} of ${i.upload.size} bytes of ${i.upload.sha256.slice(0, 16)}`] : []),
  ].join('\n');
}

export interface UploadProgress {
  (sent: number, total: number, startedAt: number): void;
}

export interface UploadResult {
  resumedAt: number;
  bytes: number;          // bytes sent this time (repeats included)
  ms: number;
  rewinds: number;        // go-back-N rewinds: a chunk was lost or arrived corrupt
  timeouts: number;       // acknowledgement timeouts (each one a rewind too)
  deviceErrors: number;   // frames of ours the board reported corrupt (BAD_CRC, BAD_FRAME, FRAME_TOO_LARGE)
  chunkSizes: Record<number, number>;   // data bytes a chunk -> chunks sent at that size
  chunkMax: number;       // the board's max_chunk (the size the upload starts at)
}

// The chunk size adapts to the line, as ZMODEM's does: it halves after a loss (a rewind or a timeout), down
// to UPLOAD_CHUNK_MIN, and doubles (up to the board's max_chunk) once UPLOAD_GROW_AFTER full windows of the
// doubled size went through with no loss since the last change. Why windows: a loss costs what is in
// flight (go-back-N resends the window), so a size is worth growing to only when losses are rarer than
// one in several of its windows (at 1e-5 per byte each way the upload settles at 1-2 KiB chunks).
export const UPLOAD_CHUNK_MIN = 32;
export const UPLOAD_GROW_AFTER = 8;
// The acknowledgement timeout once acknowledgements have been timed: this many times the slowest one so
// far, at least chunkRetryMin ms, plus the window on the line (never more than the first try's).
export const UPLOAD_RTT_FACTOR = 3;
// What may be in flight: the board's window of chunks, but no more than two chunks once those two hold
// UPLOAD_INFLIGHT_MIN bytes: a loss costs what is in flight (go-back-N), and two chunks keep the line busy
// while the first one's acknowledgement comes back.
export const UPLOAD_INFLIGHT_MIN = 2048;
export const UPLOAD_RETRY_MIN_MS = 250;

// UPLOAD_BEGIN, then chunks in a go-back-N window until the board has every byte (section 5).
export async function upload(client: Client, image: Uint8Array, onProgress?: UploadProgress): Promise<UploadResult> {
  const size = image.byteLength;
  const digest = sha256(image);
  const b = await client.request('UPLOAD_BEGIN', { image_size: size, sha256: digest }, TIMEOUTS.uploadBegin, 'begin the upload');
  const next0 = b.next_offset as number;
  if (next0 > size) throw new BoardError(`the board says it has ${next0} bytes of a ${size}-byte image`, null);
  const chunkMax = Math.min(b.max_chunk as number, client.deviceMaxFrame - CHUNK_OVERHEAD);
  const window = Math.max(1, b.window as number);
  if (chunkMax < 1) throw new BoardError(`the board offers chunks of ${b.max_chunk} bytes`, null);
  const chunkMin = Math.min(UPLOAD_CHUNK_MIN, chunkMax);
  let chunk = chunkMax;
  // the first try waits as the protocol says (a board erasing its first block may be slow); later ones
  // scale with the acknowledgements seen, so a lost frame on a noisy line costs a fraction of a second
  const inflight = () => Math.min(window * chunk, Math.max(2 * chunk, UPLOAD_INFLIGHT_MIN));
  const windowMs = () => lineMs(inflight() + window * (CHUNK_OVERHEAD + 3), client.baud);
  const fullMs = () => TIMEOUTS.chunkBase + windowMs();
  let slowest = -1;
  const ackMs = () => (slowest < 0 ? fullMs() : Math.min(fullMs(), Math.max(UPLOAD_RETRY_MIN_MS, UPLOAD_RTT_FACTOR * slowest) + windowMs()));
  const t0 = performance.now();
  const result: UploadResult = { resumedAt: next0, bytes: 0, ms: 0, rewinds: 0, timeouts: 0, deviceErrors: 0, chunkSizes: {}, chunkMax };
  let acked = next0, sendAt = next0, clean = 0, progressAt = performance.now();
  // after a rewind, the answers to chunks sent before it are stale: they tell of the loss already handled
  // (frames are told apart by their seq; a window is far less than half of the 256 seqs)
  let staleUpTo = -1;
  const stale = (seq: number) => staleUpTo >= 0 && ((staleUpTo - seq) & 0xff) < 128;
  const sentAt = new Map<number, number>();   // a chunk's end offset -> when it went out (for the timing)
  const chunkNo = (offset: number) => Math.floor(offset / chunkMax);
  let lastError = '';
  const wentAway = (why: string) => new BoardError(`${client.transport.name}: the board went away at ${acked} of ${size} bytes (${why})`, null, 'run flash again: it resumes where it stopped');
  // a loss: back to what the board has, and smaller chunks
  const lost = () => {
    result.rewinds++;
    staleUpTo = client.lastSeq;
    sendAt = acked;
    chunk = Math.max(chunkMin, chunk >> 1);
    clean = 0;
    sentAt.clear();
  };

  await new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let tries = 0;
    let done = false;
    let sending = false;
    const finish = (e?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      offAck();
      offErr();
      offClose();
      if (e) reject(e);
      else resolve();
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        tries++;
        result.timeouts++;
        // give up after chunkTries timeouts in a row and at least the full timeout with no progress
        if (tries >= TIMEOUTS.chunkTries && performance.now() - progressAt >= fullMs()) {
          return finish(new BoardError(`failed to write chunk ${chunkNo(acked)}: ${lastError || `no acknowledgement within ${(fullMs() / 1000).toFixed(1)} s`} (${tries} tries)`, null));
        }
        lost();
        arm();
        pump();
      }, ackMs());
    };
    const pump = () => {
      if (sending || done) return;
      sending = true;
      (async () => {
        while (!done && sendAt < size && sendAt - acked < inflight()) {
          const len = Math.min(chunk, size - sendAt);
          const at = sendAt;
          sendAt += len;
          result.bytes += len;
          result.chunkSizes[chunk] = (result.chunkSizes[chunk] ?? 0) + 1;
          sentAt.set(at + len, performance.now());
          await client.send('UPLOAD_CHUNK', { offset: at, data: image.subarray(at, at + len) });
        }
      })().then(() => {
        sending = false;
        if (!done && sendAt < size && sendAt - acked < inflight()) pump();
      }, (e) => {
        sending = false;
        finish(e instanceof PortGoneError ? wentAway(e.why) : e);
      });
    };
    const offAck = client.on('UPLOAD_CHUNK_REPLY', (f: FrameEvent) => {
      const offset = f.fields.offset as number, next = f.fields.next_offset as number;
      if (next > size) return finish(new BoardError(`failed to write chunk ${chunkNo(offset)}: the board acknowledged ${next} of ${size} bytes`, null));
      if (next > acked) {
        const t = sentAt.get(next);
        if (t !== undefined) slowest = Math.max(slowest, performance.now() - t);
        for (const end of sentAt.keys()) if (end <= next) sentAt.delete(end);
        clean += next - acked;
        acked = next;
        tries = 0;
        progressAt = performance.now();
        lastError = '';
        onProgress?.(acked, size, t0);
        if (chunk < chunkMax && clean >= UPLOAD_GROW_AFTER * Math.min(window * 2 * chunk, Math.max(4 * chunk, UPLOAD_INFLIGHT_MIN))) {
          chunk = Math.min(chunkMax, chunk * 2);
          clean = 0;
        }
      }
      if (acked >= size) return finish();
      if (!stale(f.seq)) {
        staleUpTo = -1;   // an answer to a chunk sent since the last rewind
        // the board discarded a chunk after a gap: one chunk before it was lost
        if (offset > next) lost();
      }
      if (sendAt < acked) sendAt = acked;
      arm();
      pump();
    });
    const offErr = client.on('ERROR', (f: FrameEvent) => {
      const code = f.fields.code as number;
      const msg = errorMessage(code, new TextDecoder().decode(f.fields.message as Uint8Array));
      lastError = msg;
      if (f.fields.req_type === T.UPLOAD_CHUNK && !FRAMING_ERRORS.has(code)) {
        return finish(new BoardError(`failed to write chunk ${chunkNo(acked)}: ${msg}`, code));
      }
      // a frame of ours arrived corrupt: go back now (once per loss) rather than at the gap's
      // acknowledgement or the timeout; the chunks after it are discarded by the board anyway
      result.deviceErrors++;
      if (!stale(f.seq)) {
        lost();
        arm();
        pump();
      }
    });
    const offClose = client.onClose(() => finish(wentAway(client.closed ?? 'closed')));
    if (acked >= size) return finish();
    arm();
    pump();
  });
  result.ms = performance.now() - t0;
  return result;
}

export interface FlashOptions {
  reset?: boolean;
  onProgress?: UploadProgress;
  log?: (line: string) => void;
  reconnect?: () => Promise<Client>;   // after RESET: a fresh connection to the same port
}

export interface FlashResult {
  board: BoardInfo;
  upload: UploadResult;
  sha256: string;
  slot: 'A' | 'B';
  booted: BoardInfo | null;            // INFO after the reset, when reset
}

// INFO, the host-side checks (board, size), upload, VERIFY, COMMIT, and RESET into the new image.
export async function flash(client: Client, image: Uint8Array, opts: FlashOptions = {}): Promise<FlashResult> {
  const log = opts.log ?? (() => {});
  const board = await info(client);
  const profile = boardById(board.boardId);
  const img = readImage(image, {}); // every check `verify` makes, before a byte goes out
  if (profile ? !boardRuns(profile, img.boardId) : img.boardId !== board.boardId) {
    throw new UserError(`the image is for ${boardLabel(img.boardId)}; the board on ${client.transport.name} is ${board.board} (id ${board.boardId})`, 'pack it with --board ' + board.board);
  }
  if (image.byteLength > board.slotCapacity) {
    throw new UserError(`the image is ${image.byteLength} bytes (${(image.byteLength / 1048576).toFixed(2)} MiB); a slot on ${board.board} holds ${board.slotCapacity} bytes (${(board.slotCapacity / 1048576).toFixed(2)} MiB)`,
      'pack a smaller model or quantization (see `edge-flash plan`)');
  }
  const fileSha = toHex(sha256(image)); // the protocol's SHA-256 is of the whole file (the image's own digest stops before its trailer)
  const up = await upload(client, image, opts.onProgress);
  if (up.resumedAt > 0) log(`resumed at ${up.resumedAt} of ${image.byteLength} bytes (${((100 * up.resumedAt) / image.byteLength).toFixed(1)} %)`);
  const vMs = TIMEOUTS.verifyBase + (image.byteLength / TIMEOUTS.verifyBytesPerSecond) * 1000;
  const v = await client.request('VERIFY', {}, vMs, 'verify the image');
  const got = toHex(v.sha256 as Uint8Array);
  if (got !== fileSha || v.image_size !== image.byteLength) {
    throw new BoardError(`failed to verify the image: the board read back ${v.image_size} bytes with SHA-256 ${got}, the image is ${image.byteLength} bytes with ${fileSha}`, ERR.SHA_MISMATCH);
  }
  const c = await client.request('COMMIT', {}, TIMEOUTS.command, 'commit the image');
  const slot = slotName(c.slot as number) ?? 'A';
  let booted: BoardInfo | null = null;
  if (opts.reset) {
    await client.request('RESET', {}, TIMEOUTS.command, 'reset the board');
    booted = await afterReset(client, opts.reconnect);
    if (booted.bootedSha256 !== fileSha) {
      throw new BoardError(`the board verified and committed the image to slot ${slot} but booted ${booted.bootedSha256 ?? 'no image'} after the reset (rolled back?)`, null, 'see `edge-flash monitor` for its log');
    }
  }
  return { board, upload: up, sha256: fileSha, slot, booted };
}

// Waits for the board to answer HELLO again after RESET (the same connection, or a new one).
export async function afterReset(client: Client, reconnect?: () => Promise<Client>): Promise<BoardInfo> {
  const until = Date.now() + TIMEOUTS.reboot;
  let c = client;
  for (;;) {
    try {
      if (c.closed && reconnect) c = await reconnect();
      await c.hello(1);
      const i = await info(c);
      // a connection opened here (the port went away with the reset) is this function's to end (BYE)
      if (c !== client) await c.close();
      return i;
    } catch (e) {
      if (Date.now() > until) throw new BoardError(`the board did not come back within ${TIMEOUTS.reboot / 1000} s of RESET (${(e as Error).message})`, null);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export interface ChatSettings {
  prompt: string;
  seed: number;
  temperature: number;
  topP: number;
  steps: number;
  mode: 'generate' | 'chat';
  newConversation: boolean;
}

export interface ChatStats {
  reason: string;
  promptTokens: number;
  tokens: number;
  prefillMs: number;
  decodeMs: number;
  tokPerS: number | null;
  linearMemory: number;
  heapFree: number;
  heapLargest: number;
}

export interface ChatResult {
  text: string;
  tokens: number[];
  context: number;
  stats: ChatStats;
}

export interface ChatHandle {
  done: Promise<ChatResult>;
  cancel(): Promise<void>;
}

// CHAT: the reply (prompt tokens, context), then TOKEN frames until STATS. onText gets whole UTF-8.
export function chat(client: Client, s: ChatSettings, onText?: (text: string, token: number) => void): ChatHandle {
  const utf8 = new TextDecoder('utf-8', { fatal: false });
  const tokens: number[] = [];
  let text = '';
  let seq = -1;
  let gap: NodeJS.Timeout | undefined;
  const offs: Array<() => void> = [];
  const done = new Promise<ChatResult>((resolve, reject) => {
    let context = 0;
    const fail = (e: Error) => {
      clearTimeout(gap);
      offs.forEach((o) => o());
      reject(e);
    };
    const armGap = () => {
      clearTimeout(gap);
      gap = setTimeout(() => fail(new BoardError(`chat: no token from ${client.transport.name} within ${TIMEOUTS.tokenGap / 1000} s`, null)), TIMEOUTS.tokenGap);
    };
    offs.push(client.on('TOKEN', (f) => {
      if (f.seq !== seq) return;
      const id = f.fields.token as number;
      const piece = utf8.decode(f.fields.text as Uint8Array, { stream: true });
      tokens.push(id);
      text += piece;
      onText?.(piece, id);
      armGap();
    }));
    let failure: BoardError | null = null;
    let finished = false;
    offs.push(client.on('STATS', (f) => {
      if (f.seq !== seq) return;
      finished = true;
      clearTimeout(gap);
      offs.forEach((o) => o());
      const tail = utf8.decode();
      if (tail) {
        text += tail;
        onText?.(tail, -1);
      }
      if (failure) return reject(failure);
      const n = f.fields.tokens as number, decodeUs = f.fields.decode_us as number;
      // the CHAT reply may have come in the same read: its context is set once the request settles
      void req.then(() => resolve({
        text, tokens, context,
        stats: {
          reason: STATS_REASONS[f.fields.reason as number] ?? `reason ${f.fields.reason}`,
          promptTokens: f.fields.prompt_tokens as number, tokens: n,
          prefillMs: (f.fields.prefill_us as number) / 1000, decodeMs: decodeUs / 1000,
          tokPerS: n > 1 && decodeUs > 0 ? (n - 1) / (decodeUs / 1e6) : null,
          linearMemory: f.fields.linear_memory as number, heapFree: f.fields.heap_free as number, heapLargest: f.fields.heap_largest as number,
        },
      }), () => {});
    }));
    offs.push(client.on('ERROR', (f) => {
      // a trap during the reply: the ERROR precedes a STATS with reason 'error', and the reply fails with it
      if (f.seq === seq && f.fields.req_type === T.CHAT) {
        const code = f.fields.code as number;
        failure = new BoardError(`the reply failed after ${tokens.length} tokens: ${errorMessage(code, new TextDecoder().decode(f.fields.message as Uint8Array))}`, code);
        if (tokens.length > 0) onText?.('', -1);
      }
    }));
    offs.push(client.onClose(() => fail(new BoardError(`${client.transport.name}: the board went away during the reply (${client.closed})`, null))));
    const bytes = new TextEncoder().encode(s.prompt);
    const fields = {
      seed: s.seed >>> 0, temperature: s.temperature, top_p: s.topP, steps: s.steps, mode: s.mode === 'chat' ? 1 : 0,
      flags: s.newConversation ? 1 : 0, prompt: bytes,
    };
    const maxPrompt = client.deviceMaxFrame - 6 - 16;
    if (bytes.byteLength > maxPrompt) return fail(new UserError(`the prompt is ${bytes.byteLength} bytes; the board takes at most ${maxPrompt} in one frame`));
    const req = client.request('CHAT', fields, TIMEOUTS.chatReplyBase + bytes.byteLength, 'start the chat');
    seq = client.lastSeq; // taken before any frame can arrive, so TOKEN frames are matched
    req.then((r) => {
      context = r.context as number;
      // the reply, its tokens and STATS may come in one read: no gap timer once the reply is over
      if (!finished) armGap();
    }, fail);
  });
  return {
    done,
    async cancel() {
      await client.request('CANCEL', {}, TIMEOUTS.command, 'cancel the reply');
    },
  };
}

// The stats line of a reply, its end in words. A chat turn that reaches -n ends with the board's reason
// 'context' (the conversation's window is -n): said as "cut by -n N" unless the image's context is full.
export function formatStats(s: ChatStats, limit: { steps?: number; context?: number } = {}): string {
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  const used = s.promptTokens + s.tokens;
  const byN = !!limit.steps && used >= limit.steps - 1 && !(limit.context && limit.steps >= limit.context);
  const full = !!limit.context && used >= limit.context - 1;
  const end = s.reason === 'end' ? ', end of text'
    : s.reason === 'steps' || s.reason === 'context' ? (byN ? `, cut by -n ${limit.steps}` : full || s.reason === 'context' ? ', context full' : '')
      : `, ${s.reason}`;
  return `[${s.tokens} tokens, ${s.tokPerS === null ? '-' : s.tokPerS.toFixed(1)} tok/s, prefill ${s.promptTokens} tokens in ${s.prefillMs.toFixed(0)} ms, linear memory ${kib(s.linearMemory)}, heap free ${kib(s.heapFree)}${end}]`;
}

export function logLevel(level: number): string {
  return LOG_LEVELS[level] ?? `level ${level}`;
}
