// Chat turns and run.c's generate on the device (docs/abi.md): the one place their rules live, so `edge-flash run -m chat` on a PC and
// a board's runtime over serial serve the same turns. run.c's chat() semantics (Llama 2 template;
// the prompt goes through the model one token at a time, sampling at every position as run.c does),
// with ends of a reply that run.c lacks: the model's end of text (BOS or EOS), a per-turn token limit,
// and the end of the context, after which the host asks for the next prompt.
//
// The host (or board) writes the system prompt's bytes, then the user's, at tok_text(), calls
// chat_turn, then chat_next until it returns a negative code, printing the bytes each positive
// return leaves at tok_piece(). A conversation is the positions 0..context-1; chat_reset starts a new one.
import { batchWidth, contextLength, model_forward, model_step, model_tokens } from './llama';
import { tok_decode, tok_encode, tok_text, tok_tokens, tokBos, tokEos, tokTextCap } from './tokenizer';

// chat_turn results (>= 0: the prompt's token count)
export const CHAT_TOO_LONG: i32 = -1;     // system + user + template do not fit the text buffer
export const CHAT_CONTEXT_FULL: i32 = -2; // the prompt does not fit the positions left: chat_reset, then try again
export const CHAT_NO_TOKENIZER: i32 = -3;
// chat_next results (>= 0: bytes at tok_piece() to print, 0 while the prompt goes in)
export const CHAT_END_TEXT: i32 = -1;     // the model ended its reply (BOS or EOS)
export const CHAT_REPLY_LIMIT: i32 = -2;  // the reply reached the turn's token limit
export const CHAT_CONTEXT_END: i32 = -3;  // the conversation reached the end of its context
export const CHAT_ERROR: i32 = -4;        // no turn started, or the model could not step

const SYS_OPEN = '[INST] <<SYS>>\n';
const SYS_CLOSE = '\n<</SYS>>\n\n';
const INST_OPEN = '[INST] ';
const INST_CLOSE = ' [/INST]';
export const CHAT_TEMPLATE_BYTES: i32 = 15 + 11 + 8; // the template's bytes around system and user

let pos: i32 = 0, context: i32 = 0;
let np: i32 = 0, idx: i32 = 0;           // the turn's prompt tokens and how many went in
let token: i32 = 0, next: i32 = 0;
let replies: i32 = 0, limit: i32 = 0, ended: i32 = CHAT_ERROR;
let carry: i32 = -1;                     // the end-of-text token that closed the last reply: run.c feeds it first

// Starts a conversation of `ctx` positions (0 or more than the model's context: all of it).
export function chat_reset(ctx: i32): void {
  const n = contextLength();
  context = ctx <= 0 || ctx > n ? n : ctx;
  pos = 0; np = 0; idx = 0; carry = -1; ended = CHAT_ERROR;
}

export function chat_pos(): i32 { return pos; }

// The token whose bytes the last chat_next printed (a board's TOKEN frame carries its id).
export function chat_token(): i32 { return next; }

function put(at: usize, s: string): usize {
  for (let i = 0; i < s.length; i++) store<u8>(at + i, <u8>s.charCodeAt(i));
  return at + s.length;
}

// Renders the template in place over the sysLen + userLen bytes at tok_text() (the system prompt only
// on a conversation's first turn), tokenizes it with BOS, and starts the reply; `replyLimit` tokens at
// most (0: no limit but the context).
export function chat_turn(sysLen: i32, userLen: i32, replyLimit: i32): i32 {
  if (tokTextCap() < 0) return CHAT_NO_TOKENIZER;
  if (context == 0) chat_reset(0);
  if (sysLen < 0 || userLen < 0 || sysLen + userLen + CHAT_TEMPLATE_BYTES > tokTextCap()) return CHAT_TOO_LONG;
  const t = tok_text();
  const withSys = pos == 0 && sysLen > 0;
  const head = withSys ? SYS_OPEN.length : INST_OPEN.length;
  const mid = withSys ? SYS_CLOSE.length : 0;
  // move the user's bytes, then the system's, to their places (back to front: the copies overlap)
  const userAt = t + <usize>(head + (withSys ? sysLen : 0) + mid);
  memory.copy(userAt, t + <usize>sysLen, <usize>userLen);
  let end: usize;
  if (withSys) {
    memory.copy(t + <usize>head, t, <usize>sysLen);
    put(t, SYS_OPEN);
    put(t + <usize>(head + sysLen), SYS_CLOSE);
  } else put(t, INST_OPEN);
  end = put(userAt + <usize>userLen, INST_CLOSE);
  const n = tok_encode(<i32>(end - t), 1, 0);
  if (n < 0) return CHAT_NO_TOKENIZER;
  const need = n + (carry >= 0 && pos > 0 ? 1 : 0);
  if (pos + need >= context) return CHAT_CONTEXT_FULL; // at least one position must be left for the reply
  // run.c forwards the token that ended the last reply before the new prompt (and samples after it)
  if (carry >= 0 && pos > 0) {
    if (model_step(carry, pos) < 0) return CHAT_CONTEXT_FULL;
    pos++;
  }
  carry = -1;
  np = n; idx = 0; replies = 0; limit = replyLimit; ended = 0;
  return n;
}

// One position of the turn: the next prompt token goes in, or the last sampled one; returns the bytes
// to print at tok_piece() or an end code (which it keeps returning until the next chat_turn).
export function chat_next(): i32 {
  if (ended != 0) return ended;
  if (pos >= context) { ended = CHAT_CONTEXT_END; return ended; }
  if (idx < np) {
    token = load<i32>(tok_tokens() + (<usize>idx << 2));
    idx++;
  } else token = next;
  next = model_step(token, pos);
  if (next < 0) { ended = CHAT_ERROR; return ended; }
  pos++;
  if (idx < np) return 0;
  if (next == tokEos() || next == tokBos()) {
    carry = next;
    ended = CHAT_END_TEXT;
    return ended;
  }
  const b = tok_decode(token, next);
  replies++;
  if (limit > 0 && replies >= limit) ended = CHAT_REPLY_LIMIT;
  else if (pos >= context) ended = CHAT_CONTEXT_END;
  return b < 0 ? 0 : b;
}

// ---- generate: run.c's generate() on the device ---------------------------------------------------
// The prompt (tokenized with BOS) is forced: its positions go through the model as batched prefill
// with no logits and no sampling (run.c forwards them one by one and ignores their logits: the same
// tokens), and its pieces are printed; then tokens are sampled until BOS or `steps` positions.
let gForced: i32 = 0, gDone: i32 = 0, gSteps: i32 = 0;

// Tokenizes the textLen bytes at tok_text() and prefills; returns the prompt's token count, or
// CHAT_TOO_LONG / CHAT_NO_TOKENIZER, CHAT_ERROR when the prefill does not fit the plan.
export function gen_begin(textLen: i32, steps: i32): i32 {
  if (tokTextCap() < 0) return CHAT_NO_TOKENIZER;
  if (textLen < 0 || textLen > tokTextCap()) return CHAT_TOO_LONG;
  const n = tok_encode(textLen, 1, 0);
  if (n < 0) return CHAT_NO_TOKENIZER;
  const ctx = contextLength();
  gSteps = steps <= 0 || steps > ctx ? ctx : steps;
  np = n;
  token = load<i32>(tok_tokens());
  pos = 0; gDone = 0;
  gForced = min(n - 1, gSteps);
  const b = batchWidth();
  for (let i = 0; i < gForced; i += b) {
    const k = min(b, gForced - i);
    for (let j = 0; j < k; j++) store<i32>(model_tokens() + (<usize>j << 2), load<i32>(tok_tokens() + (<usize>(i + j) << 2)));
    if (model_forward(k, i, 0) != 0) return CHAT_ERROR;
  }
  ended = 0;
  return n;
}

// The last token printed (after gen_begin: the prompt's first, BOS).
export function gen_token(): i32 { return token; }

// The next printed piece (bytes at tok_piece(), maybe 0), or CHAT_END_TEXT (BOS), CHAT_CONTEXT_END
// (`steps` positions), CHAT_ERROR.
export function gen_next(): i32 {
  if (ended != 0) return ended;
  let nx: i32;
  if (gDone < gForced) {
    nx = load<i32>(tok_tokens() + (<usize>(gDone + 1) << 2));
    gDone++;
  } else {
    if (pos >= gSteps) { ended = CHAT_CONTEXT_END; return ended; }
    nx = model_step(token, pos);
    if (nx < 0) { ended = CHAT_ERROR; return ended; }
  }
  pos++;
  if (nx == tokBos()) { ended = CHAT_END_TEXT; return ended; }
  const b = tok_decode(token, nx);
  token = nx;
  return b < 0 ? 0 : b;
}
