// The generation loops of llama2.c's run.c over the WASM runtime: `generate` (a prompt, then sampled
// tokens until BOS or `steps` positions) and `chat` (Llama 2 chat template, turns from a line source).
// The forward pass and the sampler run in WASM; the host tokenizes, prints and times.
//
// Difference from run.c: the prompt's tokens before the last one go through the model as one
// batched prefill (GEMM, no logits: run.c forwards them one by one and ignores their logits), which
// gives the same tokens; chat mode forwards one token at a time as run.c does, since it samples (and
// so advances the random generator) at every position.
import type { ModelRuntime } from './runtime.ts';
import type { TextCodec } from './tokenizer.ts';

export interface GenerateResult {
  tokens: number[];     // every token fed or produced, from the first prompt token
  positions: number;    // forward positions run (run.c's pos)
  promptTokens: number;
  prefillMs: number;    // time of the batched prefill
  decodeMs: number;     // time of the rest
  decodeSteps: number;  // single-token forward steps
  achievedTokS: number; // run.c's figure: (pos - 1) positions over the time after the first forward call
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

export interface ChatIO {
  readLine(guide: string): Promise<string | null>; // null at end of input
  emit(bytes: Uint8Array): void;
  print(text: string): void;
}

// run.c's chat(): the system prompt (from -y, or asked at position 0), then user turns rendered as
// "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]" (first turn with a system prompt) or
// "[INST] {user} [/INST]"; EOS ends the assistant's turn. Stops at `steps` positions or end of input.
export async function chat(rt: ModelRuntime, tok: TextCodec, userPrompt: string | undefined, systemPrompt: string | undefined, steps: number, io: ChatIO): Promise<GenerateResult> {
  const eos = tok.eos;
  let userTurn = true;
  let next = 0, token = 0, pos = 0, userIdx = 0;
  let promptTokens: number[] = [];
  let system = '';
  const t0 = performance.now();
  const all: number[] = [];
  while (pos < steps) {
    if (userTurn) {
      if (pos === 0) {
        if (systemPrompt === undefined) {
          const s = await io.readLine('Enter system prompt (optional): ');
          if (s === null) break;
          system = s;
        } else system = systemPrompt;
      }
      let user: string | null;
      if (pos === 0 && userPrompt !== undefined) user = userPrompt;
      else user = await io.readLine('User: ');
      if (user === null) break;
      const rendered = pos === 0 && system !== '' ? `[INST] <<SYS>>\n${system}\n<</SYS>>\n\n${user} [/INST]` : `[INST] ${user} [/INST]`;
      promptTokens = tok.encode(rendered, true, false);
      userIdx = 0;
      userTurn = false;
      io.print('Assistant: ');
    }
    token = userIdx < promptTokens.length ? promptTokens[userIdx++] : next;
    if (token === eos) userTurn = true;
    next = rt.step(token, pos);
    all.push(token);
    pos++;
    if (userIdx >= promptTokens.length && next !== eos) io.emit(tok.decode(token, next));
    if (next === eos) io.print('\n');
  }
  io.print('\n');
  const ms = performance.now() - t0;
  return { tokens: all, positions: pos, promptTokens: 0, prefillMs: 0, decodeMs: ms, decodeSteps: pos, achievedTokS: pos > 0 ? pos / (ms / 1000) : 0 };
}
