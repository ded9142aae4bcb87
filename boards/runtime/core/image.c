#include "image.h"
#include <stdio.h>
#include <string.h>
#include "crc32.h"
#include "desc.gen.h"
#include "ed25519.h"
#include "formats.gen.h"
#include "json.h"
#include "sha256.h"

static const char *const CODES[EF_IMG_CODE_COUNT] = {
  "ok", "truncated", "trailing", "magic", "version", "future_version", "header", "header_crc", "wrong_board",
  "oversized", "section_kind", "section_duplicate", "section_missing", "section_align", "misaligned",
  "section_bounds", "overlap", "section_crc", "sha256", "signature", "app", "config", "tokenizer", "tensor", "metadata",
  "descriptor", "descriptor_tokenizer", "descriptor_tensor", "descriptor_kernel", "descriptor_resident",
};

const char *ef_image_code(ef_image_err e) {
  return (unsigned)e < EF_IMG_CODE_COUNT ? CODES[e] : "unknown";
}

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static float f32(const uint8_t *p) { uint32_t b = u32(p); float f; memcpy(&f, &b, 4); return f; }
static int pow2(uint32_t x) { return x && !(x & (x - 1)); }

#define FAIL(code, ...) do { if (msg && msg_cap) snprintf(msg, msg_cap, __VA_ARGS__); return (code); } while (0)

/* Section kinds of version 3: name, minimum alignment, required. */
#define N_KINDS 6
static const struct { const char *name; uint32_t min_align; int required; } KINDS[N_KINDS + 1] = {
  {0, 0, 0}, {"app", 16, 1}, {"config", 16, 1}, {"tokenizer", 16, 1}, {"weights", 64, 1}, {"metadata", 16, 0}, {"descriptor", 16, 1},
};

/* Weight formats as the reader needs them (formats.gen.h's ids and blocks; the row tile is the largest
 * of the format's kernels' tiles, host/model/quantize.ts rowTileOf: tt4 16, the others 1; the stream
 * tile, formats.ts streamTile, what a streamed chunk of rows is a multiple of: the row tile, or the
 * panel of f32p8's 8 interleaved rows, whose matrices are not padded). */
typedef struct { uint32_t block, block_bytes, row_tile, stream_tile; } fmt_info;
static int format_info(uint16_t id, fmt_info *f) {
  f->stream_tile = 0;
  switch (id) {
    case EF_FMT_F32P8: f->block = EF_FMT_F32P8_BLOCK; f->block_bytes = EF_FMT_F32P8_BLOCK_BYTES; f->row_tile = 1; f->stream_tile = EF_FMT_F32P8_ROW_PANEL; return 1;
#define F(ID, NAME, TILE) case ID: f->block = NAME##_BLOCK; f->block_bytes = NAME##_BLOCK_BYTES; f->row_tile = f->stream_tile = TILE; return 1;
    F(EF_FMT_F32, EF_FMT_F32, 1) F(EF_FMT_Q8_0, EF_FMT_Q8_0, 1) F(EF_FMT_TQ2, EF_FMT_TQ2, 1) F(EF_FMT_TQ1, EF_FMT_TQ1, 1)
    F(EF_FMT_TB1, EF_FMT_TB1, 1) F(EF_FMT_I2G32, EF_FMT_I2G32, 1) F(EF_FMT_I2G64, EF_FMT_I2G64, 1) F(EF_FMT_I2G128, EF_FMT_I2G128, 1)
    F(EF_FMT_I3G32, EF_FMT_I3G32, 1) F(EF_FMT_I3G64, EF_FMT_I3G64, 1) F(EF_FMT_I3G128, EF_FMT_I3G128, 1)
    F(EF_FMT_I4G32, EF_FMT_I4G32, 1) F(EF_FMT_I4G64, EF_FMT_I4G64, 1) F(EF_FMT_I4G128, EF_FMT_I4G128, 1)
    F(EF_FMT_BMD3G128, EF_FMT_BMD3G128, 1) F(EF_FMT_BMD4G128, EF_FMT_BMD4G128, 1) F(EF_FMT_TT4, EF_FMT_TT4, 16)
#undef F
    default: return 0;
  }
}

/* The tensor the config implies at index i (layout.ts modelTensors): name, rows, cols, role. */
enum { ROLE_EMBEDDING, ROLE_NORM, ROLE_MATRIX, ROLE_CLASSIFIER };
static void tensor_spec(const ef_config *c, uint32_t i, char name[32], uint32_t *m, uint32_t *k, int *role) {
  static const char *const LAYER[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"};
  uint32_t kv = c->dim / c->n_heads * c->n_kv_heads;
  if (i == 0) { strcpy(name, "token_embd"); *m = c->vocab_size; *k = c->dim; *role = ROLE_EMBEDDING; return; }
  if (i <= 9 * c->n_layers) {
    uint32_t l = (i - 1) / 9, j = (i - 1) % 9;
    snprintf(name, 32, "blk.%u.%s", (unsigned)l, LAYER[j]);
    *role = (j == 0 || j == 5) ? ROLE_NORM : ROLE_MATRIX;
    switch (j) {
      case 0: case 5: *m = 1; *k = c->dim; break;
      case 1: case 4: *m = c->dim; *k = c->dim; break;
      case 2: case 3: *m = kv; *k = c->dim; break;
      case 6: case 8: *m = c->hidden_dim; *k = c->dim; break;
      default: *m = c->dim; *k = c->hidden_dim; break;
    }
    return;
  }
  if (i == 9 * c->n_layers + 1) { strcpy(name, "output_norm"); *m = 1; *k = c->dim; *role = ROLE_NORM; return; }
  strcpy(name, "output"); *m = c->vocab_size; *k = c->dim; *role = ROLE_CLASSIFIER;
}

static ef_image_err read_config(const uint8_t *b, uint32_t n, ef_config *c, char *msg, size_t msg_cap) {
  uint32_t i;
  if (n != 64) FAIL(EF_IMG_CONFIG, "section 'config' is %u bytes, expected 64", (unsigned)n);
  c->flags = u32(b + 32);
  if (c->flags & ~1u) FAIL(EF_IMG_CONFIG, "config: unknown flags 0x%x", (unsigned)(c->flags & ~1u));
  c->kv_format = b[40]; c->act_format = b[41];
  if (c->kv_format > 3) FAIL(EF_IMG_CONFIG, "config: kv_format is %u, expected 0..3 (f32, int8, int4, int3)", c->kv_format);
  if (c->act_format > 3) FAIL(EF_IMG_CONFIG, "config: act_format is %u, expected 0..3 (f32, i8, i4, a4.8)", c->act_format);
  for (i = 60; i < 64; i++) if (b[i]) FAIL(EF_IMG_CONFIG, "config: reserved bytes are not zero");
  c->dim = u32(b); c->hidden_dim = u32(b + 4); c->n_layers = u32(b + 8); c->n_heads = u32(b + 12); c->n_kv_heads = u32(b + 16);
  c->vocab_size = u32(b + 20); c->seq_len = u32(b + 24); c->ctx = u32(b + 28); c->planned_linear = u32(b + 36);
  c->batch = u16(b + 42); c->norm_eps = f32(b + 44); c->rope_theta = f32(b + 48); c->linear_limit = u32(b + 52);
  c->text_bytes = u32(b + 56);
  {
    const struct { const char *name; uint32_t v, max; } ints[8] = {
      {"dim", c->dim, 1u << 16}, {"hidden_dim", c->hidden_dim, 1u << 18}, {"n_layers", c->n_layers, 1024}, {"n_heads", c->n_heads, 1024},
      {"n_kv_heads", c->n_kv_heads, 1024}, {"vocab_size", c->vocab_size, 1u << 20}, {"seq_len", c->seq_len, 1u << 20}, {"ctx", c->ctx, 1u << 20},
    };
    for (i = 0; i < 8; i++) {
      if (ints[i].v < 1 || ints[i].v > ints[i].max) FAIL(EF_IMG_CONFIG, "config: %s is %u, expected an integer in 1..%u", ints[i].name, (unsigned)ints[i].v, (unsigned)ints[i].max);
    }
  }
  if (c->dim % c->n_heads) FAIL(EF_IMG_CONFIG, "config: dim %u is not a multiple of n_heads %u", (unsigned)c->dim, (unsigned)c->n_heads);
  if (c->n_heads % c->n_kv_heads) FAIL(EF_IMG_CONFIG, "config: n_heads %u is not a multiple of n_kv_heads %u", (unsigned)c->n_heads, (unsigned)c->n_kv_heads);
  if ((c->dim / c->n_heads) % 2) FAIL(EF_IMG_CONFIG, "config: head size %u is odd (RoPE rotates pairs)", (unsigned)(c->dim / c->n_heads));
  if (c->ctx > c->seq_len) FAIL(EF_IMG_CONFIG, "config: ctx %u is larger than the model's seq_len %u", (unsigned)c->ctx, (unsigned)c->seq_len);
  if (c->text_bytes < 1 || c->text_bytes > 65536) FAIL(EF_IMG_CONFIG, "config: text_bytes is %u, expected 1..65536", (unsigned)c->text_bytes);
  if (c->linear_limit > 0 && c->planned_linear > c->linear_limit) FAIL(EF_IMG_CONFIG, "config: planned_linear %u exceeds linear_limit %u", (unsigned)c->planned_linear, (unsigned)c->linear_limit);
  if (!(c->norm_eps > 0 && c->norm_eps < 1)) FAIL(EF_IMG_CONFIG, "config: norm_eps is %g, expected a number in (0, 1)", (double)c->norm_eps);
  if (!(c->rope_theta >= 1 && c->rope_theta <= 3.4028234663852886e38)) FAIL(EF_IMG_CONFIG, "config: rope_theta is %g, expected a finite number >= 1", (double)c->rope_theta);
  return EF_IMG_OK;
}

/* Unsigned byte order of two pieces, as host/model/tokenizer.ts compareBytes: <0, 0, >0. */
static int compare_bytes(const uint8_t *a, uint32_t na, const uint8_t *b, uint32_t nb) {
  uint32_t i, n = na < nb ? na : nb;
  for (i = 0; i < n; i++) if (a[i] != b[i]) return (int)a[i] - (int)b[i];
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/* The app's tokenizer (EFTK, docs/image-format.md), every field checked in read.ts checkTokenizer's
 * order: header, table sizes, scores, piece offsets, piece bytes, the sorted ids (a permutation in
 * byte order of the pieces), the byte fallbacks. The section stays where it lies: the permutation is
 * checked with a small bitmap over one range of ids at a time, so the first bad entry is the one the
 * TypeScript reader names. */
#define TOK_IDS_PER_PASS 4096u
static ef_image_err check_tokenizer(const uint8_t *b, uint32_t n, uint32_t vocab_size, char *msg, size_t msg_cap) {
  uint32_t vocab, max_len, i, total, first_bad, lo;
  int32_t bos, eos, dummy;
  uint64_t offsets, sorted, bytes, pieces;
  const uint8_t *pc;
  uint8_t seen[TOK_IDS_PER_PASS / 8];
#define OFF(j) u32(b + offsets + 4 * (uint64_t)(j))
#define SORTED(j) u32(b + sorted + 4 * (uint64_t)(j))
  if (n < 32) FAIL(EF_IMG_TOKENIZER, "section 'tokenizer' is %u bytes, shorter than its 32-byte header", (unsigned)n);
  if (u32(b) != 0x4b544645u) FAIL(EF_IMG_TOKENIZER, "tokenizer: magic is %02x %02x %02x %02x, expected 45 46 54 4b ('EFTK')", b[0], b[1], b[2], b[3]);
  if (u32(b + 4) != 1) FAIL(EF_IMG_TOKENIZER, "tokenizer: version %u, expected 1", (unsigned)u32(b + 4));
  vocab = u32(b + 8); max_len = u32(b + 12); bos = (int32_t)u32(b + 16); eos = (int32_t)u32(b + 20); dummy = (int32_t)u32(b + 24);
  if (vocab != vocab_size) FAIL(EF_IMG_TOKENIZER, "tokenizer: %u tokens, the config declares %u", (unsigned)vocab, (unsigned)vocab_size);
  if (max_len < 1 || max_len > 65536) FAIL(EF_IMG_TOKENIZER, "tokenizer: max_token_length is %u, expected 1..65536", (unsigned)max_len);
  if (bos < 0 || (uint32_t)bos >= vocab) FAIL(EF_IMG_TOKENIZER, "tokenizer: bos is %d, expected 0..%u", (int)bos, (unsigned)(vocab - 1));
  if (eos < 0 || (uint32_t)eos >= vocab) FAIL(EF_IMG_TOKENIZER, "tokenizer: eos is %d, expected 0..%u", (int)eos, (unsigned)(vocab - 1));
  if (dummy < -1 || (dummy >= 0 && (uint32_t)dummy >= vocab)) FAIL(EF_IMG_TOKENIZER, "tokenizer: the dummy-prefix id is %d, expected -1..%u", (int)dummy, (unsigned)(vocab - 1));
  if (u32(b + 28)) FAIL(EF_IMG_TOKENIZER, "tokenizer: reserved header word is not zero");
  offsets = 32 + 4 * (uint64_t)vocab; sorted = offsets + 4 * ((uint64_t)vocab + 1); bytes = sorted + 4 * (uint64_t)vocab; pieces = bytes + 4 * 256;
  if (n < pieces) FAIL(EF_IMG_TOKENIZER, "tokenizer: %u bytes, its tables for %u tokens need %llu", (unsigned)n, (unsigned)vocab, (unsigned long long)pieces);
  for (i = 0; i < vocab; i++) if ((u32(b + 32 + 4 * (uint64_t)i) & 0x7fffffffu) > 0x7f800000u) FAIL(EF_IMG_TOKENIZER, "tokenizer: token %u has a NaN score", (unsigned)i);
  if (OFF(0)) FAIL(EF_IMG_TOKENIZER, "tokenizer: the first piece starts at %u, expected 0", (unsigned)OFF(0));
  for (i = 0; i < vocab; i++) {
    int64_t len = (int64_t)OFF(i + 1) - (int64_t)OFF(i);
    if (len < 0 || len > (int64_t)max_len) FAIL(EF_IMG_TOKENIZER, "tokenizer: token %u has length %lld, expected 0..%u (max_token_length)", (unsigned)i, (long long)len, (unsigned)max_len);
  }
  total = OFF(vocab);
  if (pieces + total != n) FAIL(EF_IMG_TOKENIZER, "tokenizer: the pieces end at byte %llu, the section has %u", (unsigned long long)(pieces + total), (unsigned)n);
  /* From here every piece lies in the section: offsets start at 0, never decrease, and end at its end. */
  pc = b + pieces;
  if (total && memchr(pc, 0, total)) FAIL(EF_IMG_TOKENIZER, "tokenizer: a piece holds a NUL byte (pieces are stored up to their first NUL)");
  /* The first entry that is out of range or lists an id again, one range of ids per pass. */
  first_bad = vocab;
  for (lo = 0; lo < vocab; lo += TOK_IDS_PER_PASS) {
    memset(seen, 0, sizeof seen);
    for (i = 0; i < first_bad; i++) {
      uint32_t id = SORTED(i);
      if (id >= vocab) { first_bad = i; break; }
      if (id < lo || id - lo >= TOK_IDS_PER_PASS) continue;
      if (seen[(id - lo) >> 3] & (1u << ((id - lo) & 7))) { first_bad = i; break; }
      seen[(id - lo) >> 3] |= (uint8_t)(1u << ((id - lo) & 7));
    }
  }
  /* Byte order up to that entry (every id before it is a token's). */
  for (i = 1; i < first_bad; i++) {
    uint32_t p = SORTED(i - 1), q = SORTED(i);
    if (compare_bytes(pc + OFF(p), OFF(p + 1) - OFF(p), pc + OFF(q), OFF(q + 1) - OFF(q)) > 0) FAIL(EF_IMG_TOKENIZER, "tokenizer: sorted entry %u (token %u) is out of byte order", (unsigned)i, (unsigned)q);
  }
  if (first_bad < vocab) FAIL(EF_IMG_TOKENIZER, "tokenizer: sorted entry %u is %u, not a token id not yet listed (expected a permutation of 0..%u)", (unsigned)first_bad, (unsigned)SORTED(first_bad), (unsigned)(vocab - 1));
  for (i = 0; i < 256; i++) if (u32(b + bytes + 4 * i) >= vocab) FAIL(EF_IMG_TOKENIZER, "tokenizer: byte %u's fallback token is %u, expected 0..%u", (unsigned)i, (unsigned)u32(b + bytes + 4 * i), (unsigned)(vocab - 1));
#undef OFF
#undef SORTED
  return EF_IMG_OK;
}

static ef_image_err read_tensors(const uint8_t *img, const ef_section *ws, const ef_config *c, uint32_t *count_out, char *msg, size_t msg_cap) {
  const uint8_t *v = img + ws->offset;
  uint32_t count, align, data_offset, i, want_count = 1 + 9 * c->n_layers + 1 + (c->flags & 1 ? 0 : 1);
  uint64_t dir_end, prev_end;
  if (ws->size < 16) FAIL(EF_IMG_TENSOR, "section 'weights' is %u bytes, shorter than its 16-byte directory header", (unsigned)ws->size);
  count = u32(v);
  if (count != want_count) FAIL(EF_IMG_TENSOR, "weights: the directory lists %u tensors, the config needs %u", (unsigned)count, (unsigned)want_count);
  align = u32(v + 4);
  if (!pow2(align) || align < 16 || align > ws->align) FAIL(EF_IMG_TENSOR, "weights: tensor alignment %u, expected a power of two from 16 to the section's alignment %u", (unsigned)align, (unsigned)ws->align);
  data_offset = u32(v + 8);
  dir_end = 16 + 64 * (uint64_t)count;
  if (data_offset < dir_end || data_offset > ws->size) FAIL(EF_IMG_TENSOR, "weights: data_offset is %u, expected %u..%u (after the directory, inside the section)", (unsigned)data_offset, (unsigned)dir_end, (unsigned)ws->size);
  if (u32(v + 12)) FAIL(EF_IMG_TENSOR, "weights: reserved directory field is not zero");
  prev_end = data_offset;
  for (i = 0; i < count; i++) {
    const uint8_t *e = v + 16 + 64 * (size_t)i;
    char want[32];
    uint32_t m, k, sm, sk, off, size, j, nul = 32;
    uint16_t fid, tflags;
    int role;
    fmt_info f;
    uint64_t bytes;
    float scale;
    for (j = 0; j < 32; j++) if (!e[j]) { nul = j; break; }
    if (nul == 32) FAIL(EF_IMG_TENSOR, "weights: tensor %u's name is not NUL-terminated and NUL-padded", (unsigned)i);
    for (j = nul; j < 32; j++) if (e[j]) FAIL(EF_IMG_TENSOR, "weights: tensor %u's name is not NUL-terminated and NUL-padded", (unsigned)i);
    tensor_spec(c, i, want, &sm, &sk, &role);
    if (strcmp((const char *)e, want) != 0) FAIL(EF_IMG_TENSOR, "weights: tensor %u is named '%.31s', expected '%s'", (unsigned)i, (const char *)e, want);
    fid = u16(e + 32);
    if (!format_info(fid, &f)) FAIL(EF_IMG_TENSOR, "tensor '%s': unknown format id %u", want, (unsigned)fid);
    if (role == ROLE_NORM && fid != EF_FMT_F32) FAIL(EF_IMG_TENSOR, "tensor '%s': a norm weight in format %u, expected f32", want, (unsigned)fid);
    if (role == ROLE_EMBEDDING && fid != EF_FMT_F32 && fid != EF_FMT_Q8_0 && fid != EF_FMT_F32P8) FAIL(EF_IMG_TENSOR, "tensor '%s': an embedding in format %u, expected f32, q8_0 or f32p8 (the runtime reads one row a token)", want, (unsigned)fid);
    m = u32(e + 36); k = u32(e + 40);
    if (m != sm || k != sk) FAIL(EF_IMG_TENSOR, "tensor '%s' is %ux%u, the config needs %ux%u", want, (unsigned)m, (unsigned)k, (unsigned)sm, (unsigned)sk);
    if (role == ROLE_EMBEDDING && k % f.block) FAIL(EF_IMG_TENSOR, "tensor '%s': %u columns are not a multiple of the format's block %u (embeddings are not padded)", want, (unsigned)k, (unsigned)f.block);
    scale = f32(e + 44);
    if (!(scale == scale && scale <= 3.4028234663852886e38f && scale >= -3.4028234663852886e38f)) FAIL(EF_IMG_TENSOR, "tensor '%s': tensor scale is not a finite number", want);
    tflags = u16(e + 34);
    if (tflags & ~1u) FAIL(EF_IMG_TENSOR, "tensor '%s': unknown flags 0x%x", want, (unsigned)(tflags & ~1u));
    if (u32(e + 56) || u32(e + 60)) FAIL(EF_IMG_TENSOR, "tensor '%s': reserved bytes are not zero", want);
    off = u32(e + 48); size = u32(e + 52);
    bytes = (uint64_t)((m + f.row_tile - 1) / f.row_tile * f.row_tile) * ((k + f.block - 1) / f.block) * f.block_bytes;
    if (size != bytes) FAIL(EF_IMG_TENSOR, "tensor '%s': %u bytes, a %ux%u matrix of format %u has %llu", want, (unsigned)size, (unsigned)m, (unsigned)k, (unsigned)fid, (unsigned long long)bytes);
    if (off % align) FAIL(EF_IMG_MISALIGNED, "tensor '%s' starts at byte %u of section 'weights', not a multiple of the tensor alignment %u", want, (unsigned)off, (unsigned)align);
    if (off < prev_end || (uint64_t)off + size > ws->size) FAIL(EF_IMG_TENSOR, "tensor '%s' spans [%u, %llu) of section 'weights', expected within [%llu, %u) after the tensor before it", want, (unsigned)off, (unsigned long long)off + size, (unsigned long long)prev_end, (unsigned)ws->size);
    prev_end = (uint64_t)off + size;
  }
  *count_out = count;
  return EF_IMG_OK;
}

void ef_image_tensor(const ef_image *img, uint32_t i, ef_tensor *t) {
  const uint8_t *e = img->bytes + img->weights->offset + 16 + 64 * (size_t)i;
  fmt_info f;
  memcpy(t->name, e, 32);
  t->name[31] = 0;
  t->format = u16(e + 32); t->flags = u16(e + 34); t->rows = u32(e + 36); t->cols = u32(e + 40);
  t->scale = f32(e + 44); t->offset = img->weights->offset + u32(e + 48); t->size = u32(e + 52);
  format_info(t->format, &f);
  t->cols_padded = (t->cols + f.block - 1) / f.block * f.block;
  t->rows_padded = (t->rows + f.row_tile - 1) / f.row_tile * f.row_tile;
}

/* The image tensor (directory index) whose bytes descriptor entry i reads (layout.ts
 * descriptorImageTensor): layer entries are in the image's order; a shared classifier reads the embedding. */
static uint32_t desc_image_tensor(const ef_config *c, uint32_t i) {
  uint32_t last = 1 + EF_PER_LAYER * c->n_layers;
  if (i == EF_TENSOR_EMBEDDING) return 0;
  if (i == EF_TENSOR_RMS_FINAL) return last;
  if (i == EF_TENSOR_CLASSIFIER) return (c->flags & 1) ? 0 : last + 1;
  return 1 + (i - EF_TENSOR_LAYER0);
}

/* Whether descriptor entry i is a norm weight (no matmul, always resident). */
static int desc_vector(uint32_t i) {
  uint32_t j = (i - EF_TENSOR_LAYER0) % EF_PER_LAYER;
  return i == EF_TENSOR_RMS_FINAL || (i >= EF_TENSOR_LAYER0 && (j == EF_L_RMS_ATT || j == EF_L_RMS_FFN));
}

#define DH(field) u32(d + offsetof(ef_desc_header, field))
#define DT(e, field) u32((e) + offsetof(ef_desc_tensor, field))

/* The descriptor section, in read.ts checkDescriptor's order: size, magic, version, entry count, the
 * header against the config and the tokenizer section, each entry against the tensor it reads, then
 * each tensor's residency against its entries. */
static ef_image_err check_descriptor(const ef_image *img, char *msg, size_t msg_cap) {
  const ef_config *c = &img->config;
  const uint8_t *d = img->bytes + img->descriptor->offset;
  uint32_t n = EF_TENSOR_LAYER0 + EF_PER_LAYER * c->n_layers, i, j;
  uint64_t need = sizeof(ef_desc_header) + (uint64_t)n * sizeof(ef_desc_tensor);
  int32_t batch, stage;
  int none;
  if (img->descriptor->size != need) FAIL(EF_IMG_DESCRIPTOR, "section 'descriptor' is %u bytes, a model of %u layers needs %llu", (unsigned)img->descriptor->size, (unsigned)c->n_layers, (unsigned long long)need);
  if (DH(magic) != EF_DESC_MAGIC) FAIL(EF_IMG_DESCRIPTOR, "descriptor: magic is 0x%x, expected 0x%x ('EFDM')", (unsigned)DH(magic), (unsigned)EF_DESC_MAGIC);
  if (DH(version) != EF_DESC_VERSION) FAIL(EF_IMG_DESCRIPTOR, "descriptor: version %d, expected %d", (int)(int32_t)DH(version), EF_DESC_VERSION);
  if (DH(n_tensors) != n) FAIL(EF_IMG_DESCRIPTOR, "descriptor: %d tensor entries, a model of %u layers has %u", (int)(int32_t)DH(n_tensors), (unsigned)c->n_layers, (unsigned)n);
  {
    const struct { const char *name; uint32_t got, want; } same[8] = {
      {"dim", DH(dim), c->dim}, {"hidden_dim", DH(hidden), c->hidden_dim}, {"n_layers", DH(layers), c->n_layers}, {"n_heads", DH(heads), c->n_heads},
      {"n_kv_heads", DH(kv_heads), c->n_kv_heads}, {"vocab_size", DH(vocab), c->vocab_size}, {"seq_len", DH(seq), c->ctx},
      {"kv_format", DH(kv_format), c->kv_format},
    };
    for (i = 0; i < 8; i++) if (same[i].got != same[i].want) FAIL(EF_IMG_DESCRIPTOR, "descriptor: %s is %d, the config says %u", same[i].name, (int)(int32_t)same[i].got, (unsigned)same[i].want);
  }
  {
    const uint8_t *cb = img->bytes + img->config_section->offset;
    if (DH(rope_theta) != u32(cb + 48) || DH(norm_eps) != u32(cb + 44)) FAIL(EF_IMG_DESCRIPTOR, "descriptor: rope_theta or norm_eps differs from the config");
  }
  batch = (int32_t)DH(batch);
  if (batch < 1 || (uint32_t)batch > c->ctx || (c->batch > 0 && (uint32_t)batch != c->batch)) FAIL(EF_IMG_DESCRIPTOR, "descriptor: batch is %d, expected the config's", (int)batch);
  if (DH(sampler) > 1) FAIL(EF_IMG_DESCRIPTOR, "descriptor: sampler is %d, expected 0 or 1", (int)(int32_t)DH(sampler));
  if ((int32_t)DH(keep_wo) < 0 || DH(keep_wo) > c->dim) FAIL(EF_IMG_DESCRIPTOR, "descriptor: keep_wo is %d, expected 0..%u", (int)(int32_t)DH(keep_wo), (unsigned)c->dim);
  if ((int32_t)DH(keep_w2) < 0 || DH(keep_w2) > c->hidden_dim) FAIL(EF_IMG_DESCRIPTOR, "descriptor: keep_w2 is %d, expected 0..%u", (int)(int32_t)DH(keep_w2), (unsigned)c->hidden_dim);
  for (i = 0; i < sizeof(((ef_desc_header *)0)->reserved) / 4; i++) if (DH(reserved[i])) FAIL(EF_IMG_DESCRIPTOR, "descriptor: reserved word %u is not zero", (unsigned)(offsetof(ef_desc_header, reserved) / 4 + i));
  /* The app copies the tokenizer section and keeps a text_bytes prompt buffer, or (all three 0) keeps no tokenizer. */
  none = DH(tok_offset) == 0 && DH(tok_bytes) == 0 && DH(text_bytes) == 0;
  if (!none && (DH(tok_offset) != img->tokenizer->offset || DH(tok_bytes) != img->tokenizer->size)) FAIL(EF_IMG_DESCRIPTOR_TOKENIZER, "descriptor: the tokenizer is at [%u, +%u), the tokenizer section at [%u, +%u)", (unsigned)DH(tok_offset), (unsigned)DH(tok_bytes), (unsigned)img->tokenizer->offset, (unsigned)img->tokenizer->size);
  if (!none && DH(text_bytes) != c->text_bytes) FAIL(EF_IMG_DESCRIPTOR_TOKENIZER, "descriptor: text_bytes is %d, the config says %u", (int)(int32_t)DH(text_bytes), (unsigned)c->text_bytes);
  stage = (int32_t)DH(stage);
  for (i = 0; i < n; i++) {
    const uint8_t *e = d + sizeof(ef_desc_header) + (size_t)i * sizeof(ef_desc_tensor);
    const uint8_t *dir = img->bytes + img->weights->offset + 16 + 64 * (size_t)desc_image_tensor(c, i);
    int vector = desc_vector(i), matrix = i != EF_TENSOR_EMBEDDING && !vector;
    int32_t kid = (int32_t)DT(e, kernel), qmax = (int32_t)DT(e, qmax), res = (int32_t)DT(e, resident);
    uint64_t row_bytes, tile;
    ef_tensor t;
    fmt_info f;
    ef_image_tensor(img, desc_image_tensor(c, i), &t);
    format_info(t.format, &f);
    if (DT(e, format) != t.format) FAIL(EF_IMG_DESCRIPTOR_TENSOR, "descriptor entry %u (%s): format id %d, the tensor's is %u", (unsigned)i, t.name, (int)(int32_t)DT(e, format), (unsigned)t.format);
    if (DT(e, m) != t.rows_padded || DT(e, k) != t.cols_padded) FAIL(EF_IMG_DESCRIPTOR_TENSOR, "descriptor entry %u (%s): %dx%d, the tensor is stored as %ux%u", (unsigned)i, t.name, (int)(int32_t)DT(e, m), (int)(int32_t)DT(e, k), (unsigned)t.rows_padded, (unsigned)t.cols_padded);
    if (DT(e, offset) != t.offset || DT(e, bytes) != t.size) FAIL(EF_IMG_DESCRIPTOR_TENSOR, "descriptor entry %u (%s): image bytes [%u, +%u), the tensor is at [%u, +%u)", (unsigned)i, t.name, (unsigned)DT(e, offset), (unsigned)DT(e, bytes), (unsigned)t.offset, (unsigned)t.size);
    if (DT(e, ptr)) FAIL(EF_IMG_DESCRIPTOR_TENSOR, "descriptor entry %u (%s): pointer is %u, expected 0 (model_init sets it)", (unsigned)i, t.name, (unsigned)DT(e, ptr));
    if (DT(e, scale) != u32(dir + 44)) FAIL(EF_IMG_DESCRIPTOR_TENSOR, "descriptor entry %u (%s): tensor scale differs from the directory's", (unsigned)i, t.name);
    row_bytes = (uint64_t)(t.cols_padded / f.block) * f.block_bytes;
    tile = matrix ? f.stream_tile : 1;
    if (DT(e, row_bytes) != row_bytes || DT(e, row_tile) != tile) FAIL(EF_IMG_DESCRIPTOR_TENSOR, "descriptor entry %u (%s): rows of %d bytes in tiles of %d, expected %llu and %llu", (unsigned)i, t.name, (int)(int32_t)DT(e, row_bytes), (int)(int32_t)DT(e, row_tile), (unsigned long long)row_bytes, (unsigned long long)tile);
    if (matrix) {
      if (kid < 0 || kid >= EF_KERNEL_COUNT || EF_KERNEL_FORMAT[kid] < 0) FAIL(EF_IMG_DESCRIPTOR_KERNEL, "descriptor entry %u (%s): kernel id %d is not a kernel of this runtime", (unsigned)i, t.name, (int)kid);
      if ((uint32_t)EF_KERNEL_FORMAT[kid] != t.format) FAIL(EF_IMG_DESCRIPTOR_KERNEL, "descriptor entry %u (%s): kernel %d is for format %d, the tensor's is %u", (unsigned)i, t.name, (int)kid, (int)EF_KERNEL_FORMAT[kid], (unsigned)t.format);
      if (qmax != (int32_t)EF_KERNEL_QMAX[kid]) FAIL(EF_IMG_DESCRIPTOR_KERNEL, "descriptor entry %u (%s): activation qmax %d, kernel %d takes %u", (unsigned)i, t.name, (int)qmax, (int)kid, (unsigned)EF_KERNEL_QMAX[kid]);
    } else if (kid != -1 || qmax != 0) {
      FAIL(EF_IMG_DESCRIPTOR_KERNEL, "descriptor entry %u (%s): kernel %d and qmax %d, expected -1 and 0 (no matmul)", (unsigned)i, t.name, (int)kid, (int)qmax);
    }
    if (res != 0 && res != 1) FAIL(EF_IMG_DESCRIPTOR_RESIDENT, "descriptor entry %u (%s): resident is %d, expected 0 or 1", (unsigned)i, t.name, (int)res);
    if (vector && res == 0) FAIL(EF_IMG_DESCRIPTOR_RESIDENT, "descriptor entry %u (%s): a norm weight streamed (the runtime keeps them resident)", (unsigned)i, t.name);
    if (res == 0) {
      uint64_t need_stage = matrix ? row_bytes * tile : t.format == EF_FMT_F32 || t.format == EF_FMT_F32P8 ? 0 : row_bytes;
      if ((int64_t)stage < 0 || (uint64_t)(int64_t)stage < need_stage) FAIL(EF_IMG_DESCRIPTOR_RESIDENT, "descriptor entry %u (%s) streams through a %d-byte staging buffer, one row or row tile needs %llu", (unsigned)i, t.name, (int)stage, (unsigned long long)need_stage);
    }
  }
  /* Each tensor's directory flag is the OR of the entries that read it (a shared classifier reads the embedding). */
  for (j = 0; j < img->n_tensors; j++) {
    uint32_t entries[2], ne = 0, k, res = 0, last = 1 + EF_PER_LAYER * c->n_layers;
    ef_tensor t;
    if (j == 0) { entries[ne++] = EF_TENSOR_EMBEDDING; if (c->flags & 1) entries[ne++] = EF_TENSOR_CLASSIFIER; }
    else if (j == last) entries[ne++] = EF_TENSOR_RMS_FINAL;
    else if (j == last + 1) entries[ne++] = EF_TENSOR_CLASSIFIER;
    else entries[ne++] = EF_TENSOR_LAYER0 + (j - 1);
    for (k = 0; k < ne; k++) res |= DT(d + sizeof(ef_desc_header) + (size_t)entries[k] * sizeof(ef_desc_tensor), resident);
    ef_image_tensor(img, j, &t);
    if ((t.flags & 1u) != res) FAIL(EF_IMG_DESCRIPTOR_RESIDENT, "tensor '%s' is %s in the directory, %s in the descriptor", t.name, t.flags & 1u ? "resident" : "streamed", t.flags & 1u ? "streamed" : "resident");
  }
  return EF_IMG_OK;
}
#undef DH
#undef DT

static int runs(const ef_read_opts *o, uint16_t id) {
  uint32_t i;
  if (id == o->board_id) return 1;
  for (i = 0; i < o->n_accepts; i++) if (o->accepts[i] == id) return 1;
  return 0;
}

static void hex(char *out, const uint8_t *b, size_t n) {
  static const char D[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) { out[2 * i] = D[b[i] >> 4]; out[2 * i + 1] = D[b[i] & 15]; }
  out[2 * n] = 0;
}

/* Steps 1-10. `whole`: n is every byte there is (else only the header's checks that the bytes allow). */
static ef_image_err read_header(const uint8_t *b, uint64_t n, const ef_read_opts *o, ef_image *img, int whole, char *msg, size_t msg_cap) {
  uint32_t count, crc, stored, trailer, i;
  uint8_t zero[4] = {0, 0, 0, 0};
  if (n < 24) FAIL(EF_IMG_TRUNCATED, "truncated: the image is %llu bytes, shorter than the 24-byte header", (unsigned long long)n);
  if (memcmp(b, "EFIM", 4) != 0) FAIL(EF_IMG_MAGIC, "not an edge-flash image: magic is %02x %02x %02x %02x, expected 45 46 49 4d ('EFIM')", b[0], b[1], b[2], b[3]);
  img->version = u16(b + 4);
  if (img->version == 0) FAIL(EF_IMG_VERSION, "header: format version 0 is not a valid version (this edge-flash reads version %d)", EF_IMAGE_VERSION);
  if (img->version < EF_IMAGE_VERSION) FAIL(EF_IMG_VERSION, "header: format version %u is an older edge-flash's image (this edge-flash reads version %d, which carries the runtime's descriptor): pack it again", (unsigned)img->version, EF_IMAGE_VERSION);
  if (img->version > EF_IMAGE_VERSION) FAIL(EF_IMG_FUTURE_VERSION, "header: format version %u is newer than this edge-flash reads (version %d)", (unsigned)img->version, EF_IMAGE_VERSION);
  count = u16(b + 16);
  if (count < 1 || count > EF_IMAGE_MAX_SECTIONS) FAIL(EF_IMG_HEADER, "header: section count is %u, expected 1..%d", (unsigned)count, EF_IMAGE_MAX_SECTIONS);
  img->header_size = u16(b + 6);
  if (img->header_size != 24 + 20 * count) FAIL(EF_IMG_HEADER, "header: header_size is %u, expected %u for %u sections", (unsigned)img->header_size, (unsigned)(24 + 20 * count), (unsigned)count);
  if (u16(b + 18)) FAIL(EF_IMG_HEADER, "header: reserved field at byte 18 is %u, expected 0", (unsigned)u16(b + 18));
  img->flags = u16(b + 10);
  if (img->flags & ~EF_IMAGE_FLAG_SIGNED) FAIL(EF_IMG_HEADER, "header: unknown flags 0x%x (this edge-flash knows 0x1: signed)", (unsigned)(img->flags & ~EF_IMAGE_FLAG_SIGNED));
  if (n < img->header_size) FAIL(EF_IMG_TRUNCATED, "truncated: the image is %llu bytes, shorter than its %u-byte header and section table", (unsigned long long)n, (unsigned)img->header_size);
  stored = u32(b + 20);
  crc = ef_crc32(0, b, 20);
  crc = ef_crc32(crc, zero, 4);
  crc = ef_crc32(crc, b + 24, img->header_size - 24u);
  if (crc != stored) FAIL(EF_IMG_HEADER_CRC, "header: CRC-32 is 0x%08x, the header says 0x%08x (header or section table corrupt)", (unsigned)crc, (unsigned)stored);
  img->board_id = u16(b + 8);
  if (!runs(o, img->board_id)) FAIL(EF_IMG_WRONG_BOARD, "wrong board: the image is for board id %u, this board is id %u", (unsigned)img->board_id, (unsigned)o->board_id);
  trailer = 32 + (img->flags & EF_IMAGE_FLAG_SIGNED ? 96 : 0);
  img->total_size = u32(b + 12);
  if ((uint64_t)img->total_size < (uint64_t)img->header_size + trailer) FAIL(EF_IMG_HEADER, "header: total_size is %u, smaller than the header and trailer (%u bytes)", (unsigned)img->total_size, (unsigned)(img->header_size + trailer));
  if (o->capacity && img->total_size > o->capacity) FAIL(EF_IMG_OVERSIZED, "oversized: the image is %u bytes, this board holds %llu", (unsigned)img->total_size, (unsigned long long)o->capacity);
  img->digest_offset = img->total_size - trailer;
  img->n_sections = count;
  for (i = 0; i < count; i++) {
    const uint8_t *e = b + 24 + 20 * i;
    ef_section *s = &img->sections[i];
    s->kind = u32(e); s->offset = u32(e + 4); s->size = u32(e + 8); s->align = u32(e + 12); s->crc = u32(e + 16);
  }
  if (!whole) return EF_IMG_OK;
  if (n < img->total_size) FAIL(EF_IMG_TRUNCATED, "truncated: the image is %llu bytes, its header says %u", (unsigned long long)n, (unsigned)img->total_size);
  if (n > img->total_size && !o->partition) FAIL(EF_IMG_TRAILING, "trailing data: %llu bytes follow the image's end at byte %u", (unsigned long long)(n - img->total_size), (unsigned)img->total_size);
  return EF_IMG_OK;
}

ef_image_err ef_image_check_header(const uint8_t *bytes, uint64_t n, const ef_read_opts *opts, uint32_t *total_size, char *msg, size_t msg_cap) {
  ef_image img;
  ef_image_err e = read_header(bytes, n, opts, &img, 0, msg, msg_cap);
  if (e == EF_IMG_OK) *total_size = img.total_size;
  return e;
}

ef_image_err ef_image_read(const uint8_t *b, uint64_t n, const ef_read_opts *o, ef_image *img, char *msg, size_t msg_cap) {
  ef_image_err e;
  uint32_t i, j, seen = 0;
  const ef_section *by_kind[N_KINDS + 1] = {0, 0, 0, 0, 0, 0, 0};
  memset(img, 0, sizeof *img);
  img->bytes = b;
  if ((e = read_header(b, n, o, img, 1, msg, msg_cap)) != EF_IMG_OK) return e;

  /* 3. Section table. */
  for (i = 0; i < img->n_sections; i++) {
    const ef_section *s = &img->sections[i];
    const char *name;
    if (s->kind < 1 || s->kind > N_KINDS) FAIL(EF_IMG_SECTION_KIND, "section %u: unknown kind %u (version %d knows 1 app, 2 config, 3 tokenizer, 4 weights, 5 metadata, 6 descriptor)", (unsigned)i, (unsigned)s->kind, EF_IMAGE_VERSION);
    name = KINDS[s->kind].name;
    if (seen & (1u << s->kind)) FAIL(EF_IMG_SECTION_DUPLICATE, "section %u: a second '%s' section", (unsigned)i, name);
    seen |= 1u << s->kind;
    if (!pow2(s->align) || s->align > 65536 || s->align < KINDS[s->kind].min_align) FAIL(EF_IMG_SECTION_ALIGN, "section '%s': alignment %u, expected a power of two from %u to 65536", name, (unsigned)s->align, (unsigned)KINDS[s->kind].min_align);
    if (s->offset % s->align) FAIL(EF_IMG_MISALIGNED, "section '%s' starts at byte %u, not a multiple of its alignment %u", name, (unsigned)s->offset, (unsigned)s->align);
    if (s->offset < img->header_size || (uint64_t)s->offset + s->size > img->digest_offset) FAIL(EF_IMG_SECTION_BOUNDS, "section '%s' spans [%u, %llu), outside the payload [%u, %u)", name, (unsigned)s->offset, (unsigned long long)s->offset + s->size, (unsigned)img->header_size, (unsigned)img->digest_offset);
    by_kind[s->kind] = s;
  }
  /* Overlaps: sections sorted by offset (a stable insertion sort of at most 16 indices, like the TS sort). */
  {
    uint32_t order[EF_IMAGE_MAX_SECTIONS];
    for (i = 0; i < img->n_sections; i++) {
      for (j = i; j > 0 && img->sections[order[j - 1]].offset > img->sections[i].offset; j--) order[j] = order[j - 1];
      order[j] = i;
    }
    for (i = 1; i < img->n_sections; i++) {
      const ef_section *a = &img->sections[order[i - 1]], *c = &img->sections[order[i]];
      if ((uint64_t)c->offset < (uint64_t)a->offset + a->size) FAIL(EF_IMG_OVERLAP, "sections '%s' [%u, %llu) and '%s' [%u, %llu) overlap", KINDS[a->kind].name, (unsigned)a->offset, (unsigned long long)a->offset + a->size, KINDS[c->kind].name, (unsigned)c->offset, (unsigned long long)c->offset + c->size);
    }
  }
  for (i = 1; i <= N_KINDS; i++) if (KINDS[i].required && !by_kind[i]) FAIL(EF_IMG_SECTION_MISSING, "no '%s' section (kind %u), which every image needs", KINDS[i].name, (unsigned)i);

  /* 4. Integrity. */
  for (i = 0; i < img->n_sections; i++) {
    const ef_section *s = &img->sections[i];
    uint32_t got = ef_crc32(0, b + s->offset, s->size);
    if (got != s->crc) FAIL(EF_IMG_SECTION_CRC, "section '%s': CRC-32 is 0x%08x, the section table says 0x%08x (section corrupt)", KINDS[s->kind].name, (unsigned)got, (unsigned)s->crc);
  }
  ef_sha256_once(b, img->digest_offset, img->digest);
  if (memcmp(img->digest, b + img->digest_offset, 32) != 0) {
    char got[65], want[65];
    hex(got, img->digest, 32);
    hex(want, b + img->digest_offset, 32);
    FAIL(EF_IMG_SHA256, "SHA-256 of bytes [0, %u) is %s, the image says %s", (unsigned)img->digest_offset, got, want);
  }
  if (img->flags & EF_IMAGE_FLAG_SIGNED) {
    const uint8_t *pub = b + img->digest_offset + 32, *sig = pub + 32;
    if (!ef_ed25519_verify(sig, img->digest, 32, pub)) FAIL(EF_IMG_SIGNATURE, "signature: the Ed25519 signature does not verify with the image's key");
    if (o->public_key && memcmp(pub, o->public_key, 32) != 0) FAIL(EF_IMG_SIGNATURE, "signature: signed by another key than the one this board holds");
    img->public_key = pub;
  } else if (o->public_key) {
    FAIL(EF_IMG_SIGNATURE, "signature: the image is not signed; this board requires a signature by its key");
  }

  /* 5. Contents. */
  img->app = by_kind[EF_KIND_APP]; img->config_section = by_kind[EF_KIND_CONFIG]; img->tokenizer = by_kind[EF_KIND_TOKENIZER];
  img->weights = by_kind[EF_KIND_WEIGHTS]; img->metadata = by_kind[EF_KIND_METADATA]; img->descriptor = by_kind[EF_KIND_DESCRIPTOR];
  {
    static const uint8_t WASM[8] = {0, 0x61, 0x73, 0x6d, 1, 0, 0, 0};
    const uint8_t *a = b + img->app->offset;
    if (img->app->size < 8 || memcmp(a, WASM, 8) != 0) FAIL(EF_IMG_APP, "section 'app': not a WebAssembly version 1 module (expected 00 61 73 6d 01 00 00 00)");
  }
  if ((e = read_config(b + img->config_section->offset, img->config_section->size, &img->config, msg, msg_cap)) != EF_IMG_OK) return e;
  if ((e = check_tokenizer(b + img->tokenizer->offset, img->tokenizer->size, img->config.vocab_size, msg, msg_cap)) != EF_IMG_OK) return e;
  if ((e = read_tensors(b, img->weights, &img->config, &img->n_tensors, msg, msg_cap)) != EF_IMG_OK) return e;
  if ((e = check_descriptor(img, msg, msg_cap)) != EF_IMG_OK) return e;
  if (img->metadata) {
    int r = ef_json_object(b + img->metadata->offset, img->metadata->size);
    if (r == EF_JSON_BAD_UTF8) FAIL(EF_IMG_METADATA, "section 'metadata' is not valid UTF-8");
    if (r == EF_JSON_BAD) FAIL(EF_IMG_METADATA, "section 'metadata' is not a JSON text");
    if (r == EF_JSON_NOT_OBJECT) FAIL(EF_IMG_METADATA, "section 'metadata' is JSON but not an object");
  }
  return EF_IMG_OK;
}
