// The model descriptor: what the host (host/model/plan.ts) tells the runtime, as i32 words in linear
// memory. Mirrored by host/model/desc.ts (a test checks the two agree) and described in docs/model.md.

export const DESC_MAGIC: i32 = 0x4d444645; // "EFDM"
export const DESC_VERSION: i32 = 1;

// header words
export const D_MAGIC: i32 = 0;
export const D_VERSION: i32 = 1;
export const D_DIM: i32 = 2;
export const D_HIDDEN: i32 = 3;
export const D_LAYERS: i32 = 4;
export const D_HEADS: i32 = 5;
export const D_KV_HEADS: i32 = 6;
export const D_VOCAB: i32 = 7;
export const D_SEQ: i32 = 8;
export const D_KV_FORMAT: i32 = 9;     // 0 f32, 1 int8, 2 int4, 3 int3 (host/model/kv.ts)
export const D_BATCH: i32 = 10;        // most tokens per forward call (prefill GEMM width)
export const D_STAGE: i32 = 11;        // bytes of the staging buffer for streamed weights
export const D_ROPE_THETA: i32 = 12;   // f32
export const D_NORM_EPS: i32 = 13;     // f32
export const D_DIM_STRIDE: i32 = 14;   // floats per token in dim-wide buffers (>= dim, zero padded)
export const D_KV_STRIDE: i32 = 15;    // floats per token in kv_dim-wide buffers
export const D_HIDDEN_STRIDE: i32 = 16; // floats per token in hidden-wide buffers
export const D_MAX_K: i32 = 17;        // largest K of any matrix (activation staging)
export const D_MAX_M: i32 = 18;        // largest M of any matrix (output staging)
export const D_SCRATCH: i32 = 19;      // kernel scratch bytes to reserve
export const D_LOGITS: i32 = 20;       // floats of the logits buffer (classifier M)
export const D_TOK_OFFSET: i32 = 21;   // tokenizer image offset in the weight image
export const D_TOK_BYTES: i32 = 22;    // its bytes; 0: no tokenizer on the device
export const D_TEXT_BYTES: i32 = 23;   // longest prompt in bytes the device tokenizes
export const D_SAMPLER: i32 = 24;      // 1: reserve the top-p buffer (vocab * 8 bytes)
export const D_N_TENSORS: i32 = 25;
export const D_TENSORS: i32 = 32;      // first tensor entry
export const D_WORDS: i32 = 32;

// tensor entry words (T_WORDS each): embedding, rms_final, classifier, then per layer
// rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3
export const T_FORMAT: i32 = 0;    // format table id
export const T_KERNEL: i32 = 1;    // kernel id (host/model/dispatch.ts); -1 for vectors and the embedding
export const T_QMAX: i32 = 2;      // activation quantization: 0 f32, 127 int8, 7 int4
export const T_M: i32 = 3;         // rows as stored (padded to the row tile)
export const T_K: i32 = 4;         // columns as stored (padded to the block)
export const T_OFFSET: i32 = 5;    // byte offset in the weight image
export const T_BYTES: i32 = 6;
export const T_RESIDENT: i32 = 7;  // 1: copied into linear memory at init; 0: streamed on use
export const T_PTR: i32 = 8;       // set by model_init: where a resident tensor lives
export const T_SCALE: i32 = 9;     // f32 tensor scale (ternary)
export const T_ROW_BYTES: i32 = 10; // bytes per row (per row of a tile for tiled formats)
export const T_ROW_TILE: i32 = 11; // streamed chunks are whole multiples of this many rows
export const T_WORDS: i32 = 12;

export const TENSOR_EMBEDDING: i32 = 0;
export const TENSOR_RMS_FINAL: i32 = 1;
export const TENSOR_CLASSIFIER: i32 = 2;
export const TENSOR_LAYER0: i32 = 3;
export const PER_LAYER: i32 = 9;
export const L_RMS_ATT: i32 = 0;
export const L_WQ: i32 = 1;
export const L_WK: i32 = 2;
export const L_WV: i32 = 3;
export const L_WO: i32 = 4;
export const L_RMS_FFN: i32 = 5;
export const L_W1: i32 = 6;
export const L_W2: i32 = 7;
export const L_W3: i32 = 8;

// model_init results
export const INIT_OK: i32 = 0;
export const INIT_BAD_DESC: i32 = 1;
export const INIT_OUT_OF_MEMORY: i32 = 2;
