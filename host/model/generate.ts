// The generation loops of llama2.c's run.c over the WASM runtime: `generate` (a prompt, then sampled
// tokens until BOS or `steps` positions) and `chat` (Llama 2 chat template, turns from a line source).
// The forward pass and the sampler run in WASM; in generate the host tokenizes, prints and times; chat's
// turns run in the app (assembly/model/chat.ts) with its tokenizer.
//
// Difference from run.c: the prompt's tokens before the last one go through the model as one
// batched prefill (GEMM, no logits: run.c forwards them one by one and ignores their logits), which
// gives the same tokens; chat mode forwards one token at a time as run.c does, since it samples (and
// so advances the random generator) at every position.
import { UserError } from '../errors.ts';
import { CHAT_CONTEXT_END, CHAT_CONTEXT_FULL, CHAT_END_TEXT, CHAT_ERROR, CHAT_TEMPLATE_BYTES, CHAT_TOO_LONG, type ModelRuntime } from './runtime.ts';
import type { TextCodec } from './tokenizer.ts';

export interface GenerateResult {
  tokens: number[];     // every token fed or produced, from the first prompt token
  positions: number;    // forward positions run (run.c's pos)
  promptTokens: number;
  prefillMs: number;    // time of the batched prefill
  decodeMs: number;     // time of the rest
  decodeSteps: number;  // single-token forward steps
  achievedTokS: number; // run.c's figure: (pos - 1) positions over the time after the first forward call
  replyTokens?: number; // chat: tokens printed in replies
}

export function generate(rt: ModelRuntime, tok: TextCodec, prompt: string, steps: number, emit: (bytes: Uint8Array) => void): GenerateResult {
  const bos = tok.bos;
  const promptTokens = tok.encode(prompt, true, false);
  const np = promptTokens.length;
  const out = [promptTokens[0]];
  let token = promptTokens[0];
  let pos = 0;
  const t0 = performance.now();
  let tFirst = 0;
  // forced positions 0..np-2: their next tokens are the prompt's
  const forced = Math.min(np - 1, steps);
  let stopped = false;
  if (forced > 0) {
    rt.forward(promptTokens.slice(0, forced), 0, false);
    tFirst = performance.now();
    for (let i = 0; i < forced; i++) {
      const next = promptTokens[i + 1];
      pos++;
      if (next === bos) { stopped = true; break; }
      emit(tok.decode(token, next));
      out.push(next);
      token = next;
    }
  }
  const tPrefill = performance.now();
  let decodeSteps = 0;
  while (!stopped && pos < steps) {
    const next = rt.step(token, pos);
    decodeSteps++;
    if (tFirst === 0) tFirst = performance.now();
    pos++;
    if (next === bos) break;
    emit(tok.decode(token, next));
    out.push(next);
    token = next;
  }
  const tEnd = performance.now();
  const after = (tEnd - tFirst) / 1000;
  // positions after the first forward call, over the time after it (run.c starts its timer there)
  const firstCall = forced > 0 ? forced : 1;
  return {
    tokens: out, positions: pos, promptTokens: np, prefillMs: tPrefill - t0, decodeMs: tEnd - tPrefill, decodeSteps,
    achievedTokS: pos > firstCall && after > 0 ? (pos - firstCall) / after : 0,
  };
}

// `generate` run by the app itself (gen_begin / gen_next: its tokenizer, prefill, sampler, printing),
// as a board runs it: the same bytes as `generate` with run.c's tokenizer (test/golden.test.ts).
export function generateInApp(rt: ModelRuntime, prompt: string, steps: number, emit: (bytes: Uint8Array) => void): GenerateResult {
  const bytes = new TextEncoder().encode(prompt);
  const t0 = performance.now();
  const np = rt.genBegin(bytes, steps);
  if (np === CHAT_TOO_LONG) throw new UserError(`the prompt is ${bytes.length} bytes; the app's prompt buffer holds ${rt.plan.textBytes}`);
  if (np < 0) throw new Error(`gen_begin failed (code ${np})`);
  const tPrefill = performance.now();
  const forced = Math.min(np - 1, steps);
  let tFirst = forced > 0 ? tPrefill : 0;
  let pos = 0;
  const tokens = [rt.genToken()];
  for (;;) {
    const r = rt.genNext();
    if (typeof r === 'number') {
      if (r === CHAT_ERROR) throw new Error('gen_next failed');
      if (r === CHAT_END_TEXT) pos++;
      break;
    }
    pos++;
    if (tFirst === 0) tFirst = performance.now();
    tokens.push(rt.genToken());
    emit(r);
  }
  const tEnd = performance.now();
  const after = (tEnd - tFirst) / 1000;
  const firstCall = forced > 0 ? forced : 1;
  const decodeSteps = Math.max(0, pos - forced);
  return {
    tokens, positions: pos, promptTokens: np, prefillMs: tPrefill - t0, decodeMs: tEnd - tPrefill, decodeSteps,
    achievedTokS: pos > firstCall && after > 0 ? (pos - firstCall) / after : 0,
  };
}

export interface ChatIO {
  readLine(guide: string): Promise<string | null>; // null at end of input
  emit(bytes: Uint8Array): void;
  print(text: string): void;                       // the transcript's own text (stdout)
  note(line: string): void;                        // what the user should know (stderr)
}

export interface ChatOptions {
  replyTokens: number;  // most tokens of one reply (0: no limit but the context)
  once: boolean;        // answer the first prompt (-i) and stop, reading nothing
}

export const DEFAULT_REPLY_TOKENS = 256;

// run.c's chat() with turns: the system prompt (from -y, asked at the start when neither -y nor -i is
// given), then user turns in the Llama 2 template. The turn rules are the app's (assembly/model/chat.ts,
// what a board serves too): a reply ends at the model's BOS or EOS, at opts.replyTokens, or at the end of
// the conversation's `steps` positions; then the next "User:" prompt. A prompt that does not fit the
// positions left starts a new conversation (said on stderr), as does a reply that ran to the end.
export async function chat(rt: ModelRuntime, userPrompt: string | undefined, systemPrompt: string | undefined, steps: number, io: ChatIO, opts: ChatOptions): Promise<GenerateResult> {
  const enc = new TextEncoder();
  const t0 = performance.now();
  let positions = 0, replyTokens = 0;
  rt.chatReset(steps);
  let system = systemPrompt;
  if (system === undefined && userPrompt === undefined) {
    const s = await io.readLine('Enter system prompt (optional): ');
    if (s === null) return chatResult(0, 0, t0);
    system = s;
  }
  const sys = enc.encode(system ?? '');
  const fresh = (why: string) => {
    io.note(`${why}: a new conversation starts (the earlier turns are forgotten)`);
    positions += rt.chatPos();
    rt.chatReset(steps);
  };
  for (let turn = 0; ; turn++) {
    let user: string | null;
    if (turn === 0 && userPrompt !== undefined) user = userPrompt;
    else if (opts.once) break;
    else user = await io.readLine('User: ');
    if (user === null) break;
    const u = enc.encode(user);
    let n = rt.chatTurn(sys, u, opts.replyTokens);
    if (n === CHAT_CONTEXT_FULL && rt.chatPos() > 0) {
      fresh(`the conversation has used ${rt.chatPos()} of its ${steps} positions`);
      n = rt.chatTurn(sys, u, opts.replyTokens);
    }
    if (n === CHAT_CONTEXT_FULL) throw new UserError(`the prompt does not fit a conversation of ${steps} positions`, 'a shorter prompt, or a larger -n');
    if (n === CHAT_TOO_LONG) throw new UserError(`the prompt is ${sys.length + u.length} bytes; the device tokenizer takes ${rt.plan.textBytes - CHAT_TEMPLATE_BYTES} with the chat template`);
    if (n < 0) throw new Error(`chat_turn failed (code ${n})`);
    io.print('Assistant: ');
    let end: number;
    for (;;) {
      const r = rt.chatNext();
      if (typeof r === 'number') { end = r; break; }
      if (r.length > 0) { io.emit(r); replyTokens++; }
    }
    io.print('\n');
    if (end === CHAT_ERROR) throw new Error('chat_next failed');
    if (end === CHAT_CONTEXT_END && !opts.once) fresh(`the reply reached the end of the conversation's ${steps} positions`);
  }
  positions += rt.chatPos();
  io.print('\n');
  return chatResult(positions, replyTokens, t0);
}

function chatResult(pos: number, tokens: number, t0: number): GenerateResult {
  const ms = performance.now() - t0;
  return { tokens: [], positions: pos, promptTokens: 0, prefillMs: 0, decodeMs: ms, decodeSteps: pos, achievedTokS: pos > 0 ? pos / (ms / 1000) : 0, replyTokens: tokens };
}
