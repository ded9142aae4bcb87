// The llama forward pass (llama2.c run.c semantics): token embedding, per layer RMSNorm, q/k/v
// matmuls, RoPE, grouped-query attention over the KV cache, output matmul, residual, RMSNorm, SwiGLU
// feed-forward, residual; final RMSNorm and classifier. Every matrix is in the format the host chose
// for it (kernel id per tensor, see desc.ts), with f32, int8 or int4 activations; the inputs of wo and
// w2 optionally top-K sparsified first (BitNet a4.8's intermediate states).
//
// Memory: model_init lays out everything once from the descriptor (resident weights, activations,
// KV cache, staging, kernel scratch, sampler and tokenizer buffers); nothing is allocated afterwards.
// Streamed tensors are read through the `weights_read` import in row chunks into the staging buffer,
// as a board reads memory-mapped flash.
import { weights_read } from '../abi';
import { arena_alloc, arena_top, scratch } from '../arena';
import { quantize_act, sparsify_topk, TOPK_HIST_BYTES } from '../kernels/act';
import { FMT_F32, FMT_F32P8, FMT_F32P8_ROW_PANEL } from '../kernels/formats.gen';
import { gemm_dispatch } from './dispatch.gen';
import {
  D_BATCH, D_DIM, D_DIM_STRIDE, D_HEADS, D_HIDDEN, D_HIDDEN_STRIDE, D_KEEP_W2, D_KEEP_WO, D_KV_FORMAT, D_KV_HEADS, D_KV_STRIDE, D_LAYERS, D_LOGITS,
  D_MAGIC, D_MAX_K, D_MAX_M, D_NORM_EPS, D_N_TENSORS, D_ROPE_THETA, D_SAMPLER, D_SCRATCH, D_SEQ, D_STAGE, D_TENSORS, D_VERSION,
  D_VOCAB, DESC_MAGIC, DESC_VERSION, INIT_BAD_DESC, INIT_OK, INIT_OUT_OF_MEMORY, L_RMS_ATT, L_RMS_FFN, L_W1, L_W2, L_W3, L_WK,
  L_WO, L_WQ, L_WV, PER_LAYER, T_BYTES, T_FORMAT, T_K, T_KERNEL, T_M, T_OFFSET, T_PTR, T_QMAX, T_RESIDENT, T_ROW_BYTES,
  T_ROW_TILE, T_SCALE, T_WORDS, TENSOR_CLASSIFIER, TENSOR_EMBEDDING, TENSOR_LAYER0, TENSOR_RMS_FINAL,
} from './desc';
import { attention, kvBytes, kvScratchBytes, kvSetup, kvStore } from './kv';
import { addInto, copy, ropeTables, rmsnorm, rope, swiglu, swigluQuantized, zero } from './ops';
import { samplerReserve, sampler_sample } from './sampler';
import { tokenizerReserve } from './tokenizer';

// ---- configuration (from the descriptor) ----------------------------------------------------------
let desc: usize = 0;
let dim: i32 = 0, hidden: i32 = 0, nLayers: i32 = 0, nHeads: i32 = 0, nKvHeads: i32 = 0, vocab: i32 = 0, seqLen: i32 = 0;
let headSize: i32 = 0, kvDim: i32 = 0, batch: i32 = 0;
let keepWo: i32 = 0, keepW2: i32 = 0; // top-K of the inputs of wo and w2 (BitNet a4.8); 0: all
let dimS: i32 = 0, kvS: i32 = 0, hidS: i32 = 0; // per-token strides (floats) of the activation buffers
let eps: f32 = 1e-5, theta: f32 = 10000;

// ---- buffers (one arena, laid out by model_init) ---------------------------------------------------
let x: usize = 0;      // (batch, dimS) residual stream
let xb: usize = 0;     // (batch, dimS) normed input / attention output
let xb2: usize = 0;    // (batch, dimS)
let qb: usize = 0;     // (batch, dimS) queries
let kb: usize = 0;     // (batch, kvS) keys of the new tokens
let vb: usize = 0;     // (batch, kvS)
let hb: usize = 0;     // (batch, hidS)
let hb2: usize = 0;    // (batch, hidS)
let att: usize = 0;    // (n_heads / n_kv_heads, seq_len) scores of the query heads of one KV head
let tmp4: usize = 0;   // 16 bytes
let logits: usize = 0; // (classifier M)
let xq: usize = 0;     // (batch, maxK) quantized activations, i8
let xs: usize = 0;     // (batch) activation scales
let tmpX: usize = 0;   // (batch, maxK) f32 activations repacked to a matrix's K
let tmpY: usize = 0;   // (batch, maxM) outputs of one chunk before scattering
let stage: usize = 0;  // streamed weight rows
let stageBytes: i32 = 0;
let ropeCos: usize = 0, ropeSin: usize = 0; // (batch, head_size / 2)
let tokens: usize = 0; // (batch) i32 input tokens
let topkHist: usize = 0; // sparsify_topk's histogram, with a top-K only
let memTop: usize = 0;

@inline function dw(i: i32): i32 { return load<i32>(desc + (<usize>i << 2)); }
@inline function tensor(i: i32): usize { return desc + (<usize>(D_TENSORS + i * T_WORDS) << 2); }
@inline function tw(t: usize, f: i32): i32 { return load<i32>(t + (<usize>f << 2)); }
@inline function layerTensor(l: i32, which: i32): usize { return tensor(TENSOR_LAYER0 + l * PER_LAYER + which); }

function alloc(bytes: usize): usize {
  const p = arena_alloc(<u32>bytes);
  if (p == 0) return 0;
  zero(p, bytes);
  return p;
}

// Lays out the runtime from the descriptor at `d`. Returns INIT_OK or an error code.
export function model_init(d: usize): i32 {
  desc = d;
  if (dw(D_MAGIC) != DESC_MAGIC || dw(D_VERSION) != DESC_VERSION) return INIT_BAD_DESC;
  dim = dw(D_DIM); hidden = dw(D_HIDDEN); nLayers = dw(D_LAYERS); nHeads = dw(D_HEADS); nKvHeads = dw(D_KV_HEADS);
  vocab = dw(D_VOCAB); seqLen = dw(D_SEQ); batch = dw(D_BATCH);
  if (nHeads <= 0 || nKvHeads <= 0 || dim % nHeads != 0 || nHeads % nKvHeads != 0 || batch <= 0 || (dim / nHeads) % 4 != 0) return INIT_BAD_DESC;
  if (dw(D_N_TENSORS) != TENSOR_LAYER0 + nLayers * PER_LAYER) return INIT_BAD_DESC;
  headSize = dim / nHeads;
  kvDim = dim * nKvHeads / nHeads;
  dimS = dw(D_DIM_STRIDE); kvS = dw(D_KV_STRIDE); hidS = dw(D_HIDDEN_STRIDE);
  theta = reinterpret<f32>(dw(D_ROPE_THETA));
  eps = reinterpret<f32>(dw(D_NORM_EPS));
  stageBytes = dw(D_STAGE);
  keepWo = dw(D_KEEP_WO); keepW2 = dw(D_KEEP_W2);
  if (keepWo < 0 || keepWo > dim || keepW2 < 0 || keepW2 > hidden) return INIT_BAD_DESC;
  const maxK = dw(D_MAX_K), maxM = dw(D_MAX_M);

  // resident weights first: they are the bulk, and read once
  const n = dw(D_N_TENSORS);
  for (let i = 0; i < n; i++) {
    const t = tensor(i);
    store<i32>(t + (<usize>T_PTR << 2), 0);
    if (tw(t, T_RESIDENT) == 0) continue;
    // a classifier shared with the embedding is the same bytes: one copy
    let shared: usize = 0;
    for (let j = 0; j < i; j++) {
      const u = tensor(j);
      if (tw(u, T_RESIDENT) != 0 && tw(u, T_OFFSET) == tw(t, T_OFFSET) && tw(u, T_BYTES) == tw(t, T_BYTES)) shared = <usize>tw(u, T_PTR);
    }
    let p = shared;
    if (p == 0) {
      p = arena_alloc(<u32>tw(t, T_BYTES) + 16); // 16 bytes of slack: SIMD kernels may read past a block
      if (p == 0) return INIT_OUT_OF_MEMORY;
      weights_read(p, tw(t, T_OFFSET), tw(t, T_BYTES));
    }
    store<i32>(t + (<usize>T_PTR << 2), <i32>p);
  }

  const b = <usize>batch;
  x = alloc(b * <usize>dimS << 2); xb = alloc(b * <usize>dimS << 2); xb2 = alloc(b * <usize>dimS << 2);
  qb = alloc(b * <usize>dimS << 2); kb = alloc(b * <usize>kvS << 2); vb = alloc(b * <usize>kvS << 2);
  hb = alloc(b * <usize>hidS << 2); hb2 = alloc(b * <usize>hidS << 2);
  att = alloc(<usize>(nHeads / nKvHeads) * <usize>seqLen << 2);
  tmp4 = alloc(16);
  logits = alloc(<usize>dw(D_LOGITS) << 2);
  xq = alloc(b * <usize>maxK + 16); xs = alloc(b << 2);
  tmpX = batch > 1 ? alloc(b * <usize>maxK << 2) : 1;
  tmpY = batch > 1 ? alloc(b * <usize>maxM << 2) : 1;
  stage = stageBytes > 0 ? alloc(<usize>stageBytes + 16) : 1;
  ropeCos = alloc(b * <usize>headSize << 1); ropeSin = alloc(b * <usize>headSize << 1);
  tokens = alloc(b << 2);
  topkHist = keepWo > 0 || keepW2 > 0 ? alloc(TOPK_HIST_BYTES) : 1;
  if (x == 0 || xb == 0 || xb2 == 0 || qb == 0 || kb == 0 || vb == 0 || hb == 0 || hb2 == 0 || att == 0 || tmp4 == 0 || logits == 0
    || xq == 0 || xs == 0 || tmpX == 0 || tmpY == 0 || stage == 0 || ropeCos == 0 || ropeSin == 0 || tokens == 0 || topkHist == 0) return INIT_OUT_OF_MEMORY;
  const kvb = kvBytes(dw(D_KV_FORMAT), nLayers, seqLen, kvDim, nKvHeads);
  const cache = alloc(kvb);
  if (cache == 0) return INIT_OUT_OF_MEMORY;
  const ks = kvScratchBytes(dw(D_KV_FORMAT), headSize);
  const kvScratch = ks > 0 ? alloc(ks) : 1;
  if (kvScratch == 0) return INIT_OUT_OF_MEMORY;
  kvSetup(dw(D_KV_FORMAT), nLayers, seqLen, kvDim, nKvHeads, headSize, cache, kvScratch);
  if (!samplerReserve(vocab, dw(D_SAMPLER) != 0)) return INIT_OUT_OF_MEMORY;
  if (!tokenizerReserve(desc)) return INIT_OUT_OF_MEMORY;
  const sc = dw(D_SCRATCH);
  if (sc > 0) scratch(<u32>sc); // traps when memory cannot hold it: the host's plan checks first
  memTop = arena_top();
  return INIT_OK;
}

// The input token buffer (batch i32), the logits (vocab f32) and the memory high-water mark.
export function model_tokens(): usize { return tokens; }
export function model_logits(): usize { return logits; }
export function model_memory(): usize { return memTop; }
export function contextLength(): i32 { return seqLen; }
export function batchWidth(): i32 { return batch; }

// ---- matmul over any format, resident or streamed ----------------------------------------------------
let lastQ: usize = 0, lastQn: i32 = -1, lastQk: i32 = -1, lastQmax: i32 = -1;

// dst (n, dstStride) = src (n, srcStride) * W^T for tensor t, for its M rows.
function matmul(t: usize, src: usize, srcStride: i32, dst: usize, dstStride: i32, n: i32): void {
  const m = tw(t, T_M), k = tw(t, T_K), qm = tw(t, T_QMAX), kid = tw(t, T_KERNEL);
  const wscale = reinterpret<f32>(tw(t, T_SCALE));
  let xin = src, xsc = xs;
  if (qm == 0) {
    if (n > 1 && srcStride != k) {
      for (let i = 0; i < n; i++) copy(tmpX + (<usize>(i * k) << 2), src + (<usize>(i * srcStride) << 2), <usize>k << 2);
      xin = tmpX;
    }
  } else {
    if (!(lastQ == src && lastQn == n && lastQk == k && lastQmax == qm)) {
      if (srcStride == k) quantize_act(src, xq, xs, n, k, qm);
      else for (let i = 0; i < n; i++) quantize_act(src + (<usize>(i * srcStride) << 2), xq + <usize>(i * k), xs + (<usize>i << 2), 1, k, qm);
      lastQ = src; lastQn = n; lastQk = k; lastQmax = qm;
    }
    xin = xq;
  }
  const rowBytes = tw(t, T_ROW_BYTES);
  const resident = tw(t, T_RESIDENT) != 0;
  let chunk = m;
  if (!resident) {
    const tile = tw(t, T_ROW_TILE);
    chunk = (stageBytes / rowBytes / tile) * tile;
    if (chunk > m) chunk = m;
    if (chunk <= 0) unreachable(); // the host plans a staging buffer that holds a row tile
  }
  for (let r0 = 0; r0 < m; r0 += chunk) {
    const rows = min(chunk, m - r0);
    let w: usize;
    if (resident) w = <usize>tw(t, T_PTR) + <usize>r0 * <usize>rowBytes;
    else {
      weights_read(stage, tw(t, T_OFFSET) + r0 * rowBytes, rows * rowBytes);
      w = stage;
    }
    if (n == 1) gemm_dispatch(kid, w, wscale, xin, xsc, dst + (<usize>r0 << 2), rows, k, 1);
    else if (rows == m && dstStride == m) gemm_dispatch(kid, w, wscale, xin, xsc, dst, rows, k, n);
    else {
      gemm_dispatch(kid, w, wscale, xin, xsc, tmpY, rows, k, n);
      for (let i = 0; i < n; i++) copy(dst + (<usize>(i * dstStride + r0) << 2), tmpY + (<usize>(i * rows) << 2), <usize>rows << 2);
    }
  }
}

// The embedding row of `token` into out (dim f32): f32 rows are copied, f32p8 rows gathered from
// their panel (a classifier in panels shares its bytes), q8_0 rows dequantized.
function embed(token: i32, out: usize): void {
  const t = tensor(TENSOR_EMBEDDING);
  const rowBytes = tw(t, T_ROW_BYTES), fmt = tw(t, T_FORMAT);
  const panel = FMT_F32P8_ROW_PANEL;
  if (fmt == FMT_F32P8 && token < tw(t, T_M) - tw(t, T_M) % panel) {
    // row j of a panel: every panel-th float from the panel's start + j
    const at = <usize>(token - token % panel) * <usize>rowBytes + (<usize>(token % panel) << 2);
    const stride = <usize>panel << 2;
    if (tw(t, T_RESIDENT) != 0) {
      const p = <usize>tw(t, T_PTR) + at;
      for (let i = 0; i < dim; i++) store<f32>(out + (<usize>i << 2), load<f32>(p + <usize>i * stride));
    } else {
      for (let i = 0; i < dim; i++) weights_read(out + (<usize>i << 2), tw(t, T_OFFSET) + <i32>(at + <usize>i * stride), 4);
    }
    return;
  }
  const plain = fmt == FMT_F32 || fmt == FMT_F32P8; // (f32p8's last rows are stored as f32)
  let row: usize;
  if (tw(t, T_RESIDENT) != 0) row = <usize>tw(t, T_PTR) + <usize>token * <usize>rowBytes;
  else if (plain) {
    weights_read(out, tw(t, T_OFFSET) + token * rowBytes, dim << 2);
    return;
  } else {
    weights_read(stage, tw(t, T_OFFSET) + token * rowBytes, rowBytes);
    row = stage;
  }
  if (plain) copy(out, row, <usize>dim << 2);
  else {
    // q8_0: blocks of f32 d, 32 x i8
    for (let i = 0; i < dim; i++) {
      const blk = row + <usize>(i >> 5) * 36;
      store<f32>(out + (<usize>i << 2), load<f32>(blk) * <f32>load<i8>(blk + 4 + (i & 31)));
    }
  }
}

// Forward `n` tokens (model_tokens()) at positions pos..pos+n-1 through every layer, filling the KV
// cache. With wantLogits, the logits of the last token are in model_logits(). Returns 0, or 1 when
// the call does not fit the plan.
export function model_forward(n: i32, pos: i32, wantLogits: i32): i32 {
  if (n < 1 || n > batch || pos < 0 || pos + n > seqLen) return 1;
  for (let i = 0; i < n; i++) {
    const tok = load<i32>(tokens + (<usize>i << 2));
    if (tok < 0 || tok >= vocab) return 1;
    embed(tok, x + (<usize>(i * dimS) << 2));
    ropeTables(ropeCos + (<usize>(i * headSize) << 1), ropeSin + (<usize>(i * headSize) << 1), pos + i, headSize, theta);
  }
  for (let l = 0; l < nLayers; l++) {
    const rmsAtt = <usize>tw(layerTensor(l, L_RMS_ATT), T_PTR);
    for (let i = 0; i < n; i++) rmsnorm(xb + (<usize>(i * dimS) << 2), x + (<usize>(i * dimS) << 2), rmsAtt, dim, eps);
    lastQn = -1;
    matmul(layerTensor(l, L_WQ), xb, dimS, qb, dimS, n);
    matmul(layerTensor(l, L_WK), xb, dimS, kb, kvS, n);
    matmul(layerTensor(l, L_WV), xb, dimS, vb, kvS, n);
    for (let i = 0; i < n; i++) {
      const c = ropeCos + (<usize>(i * headSize) << 1), s = ropeSin + (<usize>(i * headSize) << 1);
      rope(qb + (<usize>(i * dimS) << 2), dim, headSize, c, s);
      rope(kb + (<usize>(i * kvS) << 2), kvDim, headSize, c, s);
      kvStore(l, pos + i, kb + (<usize>(i * kvS) << 2), false);
      kvStore(l, pos + i, vb + (<usize>(i * kvS) << 2), true);
    }
    for (let i = 0; i < n; i++) attention(l, pos + i, qb + (<usize>(i * dimS) << 2), xb + (<usize>(i * dimS) << 2), att, nHeads, tmp4);
    if (keepWo > 0) sparsify_topk(xb, n, dim, dimS, keepWo, topkHist);
    lastQn = -1;
    matmul(layerTensor(l, L_WO), xb, dimS, xb2, dimS, n);
    for (let i = 0; i < n; i++) addInto(x + (<usize>(i * dimS) << 2), xb2 + (<usize>(i * dimS) << 2), dim);
    const rmsFfn = <usize>tw(layerTensor(l, L_RMS_FFN), T_PTR);
    for (let i = 0; i < n; i++) rmsnorm(xb + (<usize>(i * dimS) << 2), x + (<usize>(i * dimS) << 2), rmsFfn, dim, eps);
    lastQn = -1;
    matmul(layerTensor(l, L_W1), xb, dimS, hb, hidS, n);
    matmul(layerTensor(l, L_W3), xb, dimS, hb2, hidS, n);
    const w2q = tw(layerTensor(l, L_W2), T_QMAX) != 0;
    for (let i = 0; i < n; i++) {
      if (w2q) swigluQuantized(hb + (<usize>(i * hidS) << 2), hb2 + (<usize>(i * hidS) << 2), hidden);
      else swiglu(hb + (<usize>(i * hidS) << 2), hb2 + (<usize>(i * hidS) << 2), hidden);
    }
    if (keepW2 > 0) sparsify_topk(hb, n, hidden, hidS, keepW2, topkHist);
    lastQn = -1;
    matmul(layerTensor(l, L_W2), hb, hidS, xb, dimS, n);
    for (let i = 0; i < n; i++) addInto(x + (<usize>(i * dimS) << 2), xb + (<usize>(i * dimS) << 2), dim);
  }
  if (wantLogits != 0) {
    const last = x + (<usize>((n - 1) * dimS) << 2);
    rmsnorm(xb, last, <usize>tw(tensor(TENSOR_RMS_FINAL), T_PTR), dim, eps);
    lastQn = -1;
    matmul(tensor(TENSOR_CLASSIFIER), xb, dimS, logits, dw(D_LOGITS), 1);
  }
  return 0;
}

// One decode step: forward `token` at `pos`, then sample the next token (-1: the call does not fit
// the plan, or top-p without its buffer).
export function model_step(token: i32, pos: i32): i32 {
  store<i32>(tokens, token);
  if (model_forward(1, pos, 1) != 0) return -1;
  return sampler_sample(logits, vocab);
}
