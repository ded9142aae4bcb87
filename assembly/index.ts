// The WASM module's exports: the arena, activation quantization and every kernel of the format table.
// Built twice (asconfig.json): `device` (MVP, what wasm3 runs on the boards) and `simd` (V8).
import './abi'; // routes AssemblyScript's abort to the edge.abort import (asconfig.json --use)
export { arena_alloc, arena_reset, arena_top } from './arena';
export { quantize_act } from './kernels/act';
export * from './kernels/ternary';
export * from './kernels/float';
export * from './kernels/q8';
export * from './kernels/lowbit';
export * from './kernels/bitmod';
export { model_init, model_forward, model_step, model_tokens, model_logits, model_memory } from './model/llama';
export { sampler_init, sampler_sample, sampler_state } from './model/sampler';
export { chat_reset, chat_turn, chat_next, chat_pos, gen_begin, gen_next, gen_token } from './model/chat';
export { tok_text, tok_tokens, tok_piece, tok_encode, tok_decode } from './model/tokenizer';
