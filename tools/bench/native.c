/* Native C baselines for `edge-flash bench`: plain C kernels over the same packed formats as the
 * WASM kernels (layouts in docs/formats.md; every live row of the format table: f32, f32p8, q8_0, the
 * ternary tq2/tq1/tb1/tt4, INT2/3/4 groups, BitMoD), single thread. The bench compiles this
 * file twice in the same run: `-O3` (the naive baseline) and `-O3 -march=native` (auto-vectorized).
 *
 * Each format has two kernels: `naive` (decode one weight at a time: what the -O3 build runs) and
 * `vec` (the same arithmetic with loops shaped for the auto-vectorizer: what the -march=native build
 * runs, as a best-effort vectorized baseline).
 *
 * usage: native <format> <naive|vec> <m> <k> <n> <iters> <repeat> <in.bin> <out.bin>
 *   in.bin:  f32 wscale (1 for the grouped formats, whose scales are in the blocks), then the packed (m, k) weights, then (n, k) activations (i8, or f32 for f32),
 *            then (n) f32 activation scales
 *   out.bin: (n, m) f32 results of the last call
 *   stdout:  one line per repeat: seconds for `iters` calls
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../boards/runtime/core/formats.gen.h"

#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline))
#else
#define ALWAYS_INLINE
#endif

typedef void (*gemm_fn)(const uint8_t *w, float wscale, const void *x, const float *xs, float *y, int m, int k, int n);

/* tq2: byte b of a 64-weight block holds weights b, 16+b, 32+b, 48+b in bit pairs, code c = w + 1 */
static void gemm_tq2(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const int8_t *x = xv;
  int nb = k / 64;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      const uint8_t *row = w + (size_t)r * nb * 16;
      int32_t acc = 0;
      for (int i = 0; i < k; i++) {
        int c = (row[(i / 64) * 16 + (i & 15)] >> (((i & 63) >> 4) * 2)) & 3;
        acc += x[(size_t)t * k + i] * (c - 1);
      }
      y[(size_t)t * m + r] = (float)acc * (wscale * xs[t]);
    }
}

/* tq1: 13 bytes per 64 weights; byte i < 12 holds weights i + 12d, byte 12 weights 60..63;
 * digit d = ((byte * 3^d mod 256) * 3) >> 8 */
static void gemm_tq1(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const int8_t *x = xv;
  int nb = k / 64;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      int32_t acc = 0;
      for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + ((size_t)r * nb + b) * 13;
        const int8_t *xb = x + (size_t)t * k + b * 64;
        for (int i = 0; i < 13; i++) {
          unsigned q = blk[i];
          int digits = i < 12 ? 5 : 4;
          for (int d = 0; d < digits; d++) {
            int c = (q * 3) >> 8;
            q = (q * 3) & 0xff;
            acc += xb[i < 12 ? i + 12 * d : 60 + d] * (c - 1);
          }
        }
      }
      y[(size_t)t * m + r] = (float)acc * (wscale * xs[t]);
    }
}

/* tb1: u64 plus mask, u64 minus mask per 64 weights */
static void gemm_tb1(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const int8_t *x = xv;
  int nb = k / 64;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      int32_t acc = 0;
      for (int b = 0; b < nb; b++) {
        uint64_t p, q;
        memcpy(&p, w + ((size_t)r * nb + b) * 16, 8);
        memcpy(&q, w + ((size_t)r * nb + b) * 16 + 8, 8);
        for (int i = 0; i < 64; i++) acc += x[(size_t)t * k + b * 64 + i] * ((int)((p >> i) & 1) - (int)((q >> i) & 1));
      }
      y[(size_t)t * m + r] = (float)acc * (wscale * xs[t]);
    }
}

/* tt4: rows in tiles of 16; per tile and group g of 4 weights, byte i = row i: plus nibble | minus << 4 */
static void gemm_tt4(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const int8_t *x = xv;
  int groups = k / 4;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      const uint8_t *base = w + (size_t)(r / 16) * groups * 16 + (r % 16);
      int32_t acc = 0;
      for (int i = 0; i < k; i++) {
        int b = base[(size_t)(i / 4) * 16];
        acc += x[(size_t)t * k + i] * (((b >> (i % 4)) & 1) - ((b >> (i % 4 + 4)) & 1));
      }
      y[(size_t)t * m + r] = (float)acc * (wscale * xs[t]);
    }
}

/* ---- loops shaped for the auto-vectorizer: contiguous inner loops over 16 or 64 lanes ---- */

static void gemm_tq2_vec(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const int8_t *x = xv;
  int nb = k / 64;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      int32_t acc = 0;
      for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + ((size_t)r * nb + b) * 16;
        const int8_t *xb = x + (size_t)t * k + b * 64;
        for (int j = 0; j < 4; j++)
          for (int i = 0; i < 16; i++) acc += xb[16 * j + i] * (((blk[i] >> (2 * j)) & 3) - 1);
      }
      y[(size_t)t * m + r] = (float)acc * (wscale * xs[t]);
    }
}

static void gemm_tq1_vec(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const int8_t *x = xv;
  int nb = k / 64;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      int32_t acc = 0;
      for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + ((size_t)r * nb + b) * 13;
        const int8_t *xb = x + (size_t)t * k + b * 64;
        uint8_t q[16];
        for (int i = 0; i < 13; i++) q[i] = blk[i];
        for (int d = 0; d < 5; d++)
          for (int i = 0; i < 12; i++) {
            int v = q[i] * 3;
            acc += xb[i + 12 * d] * ((v >> 8) - 1);
            q[i] = (uint8_t)v;
          }
        for (int d = 0; d < 4; d++) {
          int v = q[12] * 3;
          acc += xb[60 + d] * ((v >> 8) - 1);
          q[12] = (uint8_t)v;
        }
      }
      y[(size_t)t * m + r] = (float)acc * (wscale * xs[t]);
    }
}

static void gemm_tb1_vec(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const int8_t *x = xv;
  int nb = k / 64;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      int32_t acc = 0;
      for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + ((size_t)r * nb + b) * 16;
        const int8_t *xb = x + (size_t)t * k + b * 64;
        for (int i = 0; i < 64; i++)
          acc += xb[i] * (((blk[i >> 3] >> (i & 7)) & 1) - ((blk[8 + (i >> 3)] >> (i & 7)) & 1));
      }
      y[(size_t)t * m + r] = (float)acc * (wscale * xs[t]);
    }
}

/* tt4: 16 rows of a tile advance together, so the inner loop runs over 16 contiguous bytes */
static void gemm_tt4_vec(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const int8_t *x = xv;
  int groups = k / 4;
  for (int t = 0; t < n; t++)
    for (int tile = 0; tile < m / 16; tile++) {
      int32_t acc[16] = {0};
      const uint8_t *wt = w + (size_t)tile * groups * 16;
      for (int g = 0; g < groups; g++) {
        const int8_t *xg = x + (size_t)t * k + 4 * g;
        for (int i = 0; i < 16; i++) {
          int b = wt[g * 16 + i];
          acc[i] += xg[0] * ((b & 1) - ((b >> 4) & 1)) + xg[1] * (((b >> 1) & 1) - ((b >> 5) & 1)) +
                    xg[2] * (((b >> 2) & 1) - ((b >> 6) & 1)) + xg[3] * (((b >> 3) & 1) - ((b >> 7) & 1));
        }
      }
      for (int i = 0; i < 16; i++) y[(size_t)t * m + tile * 16 + i] = (float)acc[i] * (wscale * xs[t]);
    }
}

static void gemm_f32(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const float *x = xv;
  const float *wf = (const float *)w;
  (void)wscale; (void)xs;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      float acc = 0;
      for (int i = 0; i < k; i++) acc += wf[(size_t)r * k + i] * x[(size_t)t * k + i];
      y[(size_t)t * m + r] = acc;
    }
}

/* f32p8: whole panels of 8 rows as [k][8] floats, the last m mod 8 rows row by row; each row summed in
 * order, as gemm_f32 (8 accumulators per x: what the compiler vectorizes without reassociating). */
static void gemm_f32p8(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const float *x = xv;
  const float *wf = (const float *)w;
  int whole = m - m % 8;
  (void)wscale; (void)xs;
  for (int t = 0; t < n; t++) {
    const float *xt = x + (size_t)t * k;
    for (int r = 0; r < whole; r += 8) {
      const float *p = wf + (size_t)r * k;
      float acc[8] = {0};
      for (int i = 0; i < k; i++)
        for (int j = 0; j < 8; j++) acc[j] += p[(size_t)i * 8 + j] * xt[i];
      for (int j = 0; j < 8; j++) y[(size_t)t * m + r + j] = acc[j];
    }
    for (int r = whole; r < m; r++) {
      float acc = 0;
      for (int i = 0; i < k; i++) acc += wf[(size_t)r * k + i] * xt[i];
      y[(size_t)t * m + r] = acc;
    }
  }
}

/* ---- grouped formats: q8_0, INT2/3/4 asymmetric groups (i<bits>g<G>), BitMoD (bmd<bits>g<G>) ----
 * Layouts in docs/formats.md; the scalar references in host/quant/ref/{q8,lowbit,bitmod,codes}.ts
 * are the spec, and these kernels match them bit for bit: an exact integer dot per block, then
 * the same f32 epilogue in the same order (built with -ffp-contract=off, so no fused multiply-add).
 * Block sizes, bytes per block and the BitMoD grids come from the generated formats.gen.h. */

static inline float load_f32(const uint8_t *p) {
  float v;
  memcpy(&v, p, 4);
  return v;
}

/* bits per code of a grouped block: 8 bytes of scales, then G codes */
#define CODE_BITS(F) (((EF_FMT_##F##_BLOCK_BYTES - 8) * 8) / EF_FMT_##F##_BLOCK)

/* Code i of a group of g codes packed at c (host/quant/ref/codes.ts):
 *   4-bit: g/2 bytes, byte j = code j | code j+g/2 << 4
 *   2-bit: g/4 bytes, byte j slot s (bits 2s..2s+1) = code j + s*g/4
 *   3-bit: the low 2 bits as 2-bit, then g/8 bytes of high bits: the code of byte j, slot s has its
 *          high bit at bit 2s + j/(g/8) of byte j%(g/8) */
static inline int code_at(int bits, const uint8_t *c, int g, int i) {
  if (bits == 4) return (c[i % (g / 2)] >> (4 * (i / (g / 2)))) & 15;
  int q = g / 4, j = i % q, s = i / q;
  int low = (c[j] >> (2 * s)) & 3;
  if (bits == 2) return low;
  return low | (((c[q + j % (g / 8)] >> (2 * s + j / (g / 8))) & 1) << 2);
}

/* out[j] (|)= ((c[j] >> shift) & mask) << up for j < len (4, 8, 16 or 32): the bit fields of a run of
 * code bytes. Long runs as a byte loop the vectorizer takes; short ones as u64 shift-and-mask of eight
 * codes at a time, which ran 2-5x faster on gcc 12 with AVX-512 for runs under 32 bytes (16 for the
 * or-ed high-bit planes of 3-bit codes) than the byte loop did. */
static inline ALWAYS_INLINE void byte_fields(const uint8_t *restrict c, int len, int shift, uint64_t mask, int up, int or_into, uint8_t *restrict out) {
  if (len >= 32 || (or_into && len >= 16)) { /* long enough for vector registers: a byte loop the vectorizer takes */
    for (int j = 0; j < len; j++) out[j] = (uint8_t)((or_into ? out[j] : 0) | ((c[j] >> shift) & (mask & 0xff)) << up);
    return;
  }
  for (int o = 0; o < len; o += 8) {
    int bytes = len - o < 8 ? len - o : 8;
    uint64_t v = 0, prev = 0;
    memcpy(&v, c + o, bytes);
    v = ((v >> shift) & mask) << up;
    if (or_into) memcpy(&prev, out + o, bytes);
    v |= prev;
    memcpy(out + o, &v, bytes);
  }
}

/* All G codes of a group into out[0..g) (the vec kernels): the same layouts as code_at, unpacked by
 * byte runs, so that the dot product that follows runs over contiguous bytes. */
static inline ALWAYS_INLINE void unpack_codes(int bits, const uint8_t *c, int g, uint8_t *out) {
  const uint64_t ones = 0x0101010101010101ull;
  if (bits == 4) {
    byte_fields(c, g / 2, 0, 15 * ones, 0, 0, out);
    byte_fields(c, g / 2, 4, 15 * ones, 0, 0, out + g / 2);
    return;
  }
  for (int s = 0; s < 4; s++) byte_fields(c, g / 4, 2 * s, 3 * ones, 0, 0, out + s * (g / 4));
  if (bits == 3)
    for (int s = 0; s < 4; s++)
      for (int e = 0; e < 2; e++) byte_fields(c + g / 4, g / 8, 2 * s + e, ones, 2, 1, out + s * (g / 4) + e * (g / 8));
}

/* q8_0: per block of 32, f32 d then 32 x i8 q; iq = sum q*x; acc = acc + d*iq; y = acc*xs */
static void gemm_q8_0(const uint8_t *w, float wscale, const void *xv, const float *xs, float *y, int m, int k, int n) {
  const int8_t *x = xv;
  const int g = EF_FMT_Q8_0_BLOCK, nb = k / g;
  (void)wscale;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      float acc = 0;
      for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + ((size_t)r * nb + b) * EF_FMT_Q8_0_BLOCK_BYTES;
        const int8_t *xb = x + (size_t)t * k + b * g;
        /* q read through an int8_t pointer: gcc 12.2 at -O3 -march=native (AVX512-VNNI) turned
         * `(int8_t)blk[4 + i] * xb[i]` into an unsigned-by-signed byte dot product, a wrong result
         * that the check against the reference caught */
        const int8_t *q = (const int8_t *)(blk + 4);
        int32_t iq = 0;
        for (int i = 0; i < g; i++) iq += q[i] * xb[i];
        acc = acc + load_f32(blk) * (float)iq;
      }
      y[(size_t)t * m + r] = acc * xs[t];
    }
}

/* INT2/3/4 asymmetric: f32 d, f32 m, then G codes q, w = d*q + m.
 * Per block: iq = sum q*x, sx = sum x; acc = acc + (d*iq + m*sx); y = acc*xs. Naive: one code at a time. */
static inline ALWAYS_INLINE void gemm_lowbit(int bits, int g, size_t bb, const uint8_t *w, const int8_t *x, const float *xs, float *y, int m, int k, int n) {
  int nb = k / g;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      float acc = 0;
      for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + ((size_t)r * nb + b) * bb;
        const int8_t *xb = x + (size_t)t * k + b * g;
        int32_t iq = 0, sx = 0;
        for (int i = 0; i < g; i++) {
          iq += code_at(bits, blk + 8, g, i) * xb[i];
          sx += xb[i];
        }
        acc = acc + (load_f32(blk) * (float)iq + load_f32(blk + 4) * (float)sx);
      }
      y[(size_t)t * m + r] = acc * xs[t];
    }
}

/* sum u[i] * x[i] over n unsigned-by-signed bytes: the loop the vectorizer turns into VNNI vpdpbusd. */
static inline ALWAYS_INLINE int32_t dot_u8_i8(const uint8_t *restrict u, const int8_t *restrict x, int n) {
  int32_t s = 0;
  for (int i = 0; i < n; i++) s += u[i] * x[i];
  return s;
}

/* The sum of the activations of each (token, group): (n, k/g), malloc'd. */
static int32_t *group_sums(const int8_t *x, int n, int k, int g) {
  int nb = k / g;
  int32_t *sums = malloc(sizeof(int32_t) * (size_t)n * nb);
  for (int t = 0; t < n; t++)
    for (int b = 0; b < nb; b++) {
      int32_t sx = 0;
      for (int i = 0; i < g; i++) sx += x[(size_t)t * k + b * g + i];
      sums[(size_t)t * nb + b] = sx;
    }
  return sums;
}

/* The same arithmetic for the auto-vectorizer. Row by row: the row's codes are unpacked into a
 * (k) byte buffer first (shift and mask of eight codes per u64), then every token's dot runs over
 * contiguous bytes, one group at a time; the sums of x per (token, group) are taken once per call,
 * as the WASM swar/simd kernels do. The same f32 epilogue in the same order as the naive kernel. */
static inline ALWAYS_INLINE void gemm_lowbit_vec(int bits, int g, size_t bb, const uint8_t *w, const int8_t *x, const float *xs, float *y, int m, int k, int n) {
  int nb = k / g;
  int32_t *sums = group_sums(x, n, k, g); /* (n, k/G) */
  uint8_t *codes = malloc((size_t)k);                        /* (k) codes of one row */
  for (int r = 0; r < m; r++) {
    const uint8_t *row = w + (size_t)r * nb * bb;
    for (int b = 0; b < nb; b++) unpack_codes(bits, row + b * bb + 8, g, codes + b * g);
    for (int t = 0; t < n; t++) {
      float acc = 0;
      for (int b = 0; b < nb; b++) {
        int32_t iq = dot_u8_i8(codes + b * g, x + (size_t)t * k + b * g, g);
        acc = acc + (load_f32(row + b * bb) * (float)iq + load_f32(row + b * bb + 4) * (float)sums[(size_t)t * nb + b]);
      }
      y[(size_t)t * m + r] = acc * xs[t];
    }
  }
  free(codes);
  free(sums);
}

/* BitMoD: f32 scale, u8 selector, 3 zero bytes, then G codes; w = scale * grid[selector][code].
 * Per block: iq = sum grid[q]*x; acc = acc + scale*iq; y = acc*xs. Naive: one table lookup per code. */
static inline ALWAYS_INLINE void gemm_bitmod(int bits, int g, size_t bb, const signed char (*grids)[16], const uint8_t *w, const int8_t *x, const float *xs, float *y, int m, int k, int n) {
  int nb = k / g;
  for (int t = 0; t < n; t++)
    for (int r = 0; r < m; r++) {
      float acc = 0;
      for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + ((size_t)r * nb + b) * bb;
        const signed char *grid = grids[blk[4]];
        const int8_t *xb = x + (size_t)t * k + b * g;
        int32_t iq = 0;
        for (int i = 0; i < g; i++) iq += grid[code_at(bits, blk + 8, g, i)] * xb[i];
        acc = acc + load_f32(blk) * (float)iq;
      }
      y[(size_t)t * m + r] = acc * xs[t];
    }
}

/* A BitMoD grid value by arithmetic instead of a lookup, so that the vectorizer can take it:
 * code = sign << (bits-1) | magnitude index; FP3 magnitudes 0, 1, 2, 4; FP4 (E2M1 in half units)
 * 0, 1, 2, 3, 4, 6, 8, 12; the negative zero is the group's special value. main() checks it against
 * the grids of formats.gen.h before anything runs. */
static inline int8_t bitmod_value(int bits, uint8_t code, int8_t special) {
  uint8_t mi = code & (uint8_t)((1 << (bits - 1)) - 1);
  uint8_t m2 = (uint8_t)(mi + mi), m4 = (uint8_t)(m2 + m2);
  int8_t mag = bits == 3 ? (int8_t)(mi == 3 ? 4 : mi) : (int8_t)(mi < 4 ? mi : mi < 6 ? (uint8_t)(m2 - 4) : (uint8_t)(m4 - 16));
  int8_t v = (code >> (bits - 1)) ? (int8_t)-mag : mag;
  return code == (uint8_t)(1 << (bits - 1)) ? special : v;
}

/* Row by row as gemm_lowbit_vec: unpack the row's codes, map each group's codes to their grid values
 * by compare and select in byte lanes, offset by +16 (grid values are in [-16, 16]) so that the dot is
 * unsigned-by-signed bytes as for INT2/3/4 (which x86 has an instruction for, VNNI vpdpbusd); then
 * iq = sum (v+16)*x - 16*sum x, the same exact integer. */
static inline ALWAYS_INLINE void gemm_bitmod_vec(int bits, int g, size_t bb, const signed char (*grids)[16], const uint8_t *w, const int8_t *x, const float *xs, float *y, int m, int k, int n) {
  int nb = k / g;
  int32_t *sums = group_sums(x, n, k, g); /* (n, k/G) */
  uint8_t *codes = malloc((size_t)k);                        /* (k) codes of one row */
  uint8_t *vals = malloc((size_t)k);                         /* (k) grid values + 16 of one row */
  for (int r = 0; r < m; r++) {
    const uint8_t *row = w + (size_t)r * nb * bb;
    for (int b = 0; b < nb; b++) {
      int8_t special = grids[row[b * bb + 4]][1 << (bits - 1)];
      unpack_codes(bits, row + b * bb + 8, g, codes + b * g);
      for (int i = 0; i < g; i++) vals[b * g + i] = (uint8_t)(bitmod_value(bits, codes[b * g + i], special) + 16);
    }
    for (int t = 0; t < n; t++) {
      float acc = 0;
      for (int b = 0; b < nb; b++) {
        int32_t iq = dot_u8_i8(vals + b * g, x + (size_t)t * k + b * g, g);
        iq -= 16 * sums[(size_t)t * nb + b];
        acc = acc + load_f32(row + b * bb) * (float)iq;
      }
      y[(size_t)t * m + r] = acc * xs[t];
    }
  }
  free(vals);
  free(codes);
  free(sums);
}

static int check_bitmod_values(void) {
  for (int sel = 0; sel < 4; sel++) {
    for (int c = 0; c < 8; c++)
      if (bitmod_value(3, c, EF_BITMOD3_GRIDS[sel][4]) != EF_BITMOD3_GRIDS[sel][c]) return 0;
    for (int c = 0; c < 16; c++)
      if (bitmod_value(4, c, EF_BITMOD4_GRIDS[sel][8]) != EF_BITMOD4_GRIDS[sel][c]) return 0;
  }
  return 1;
}

/* One naive and one vec kernel per row of the format table, with its constants from formats.gen.h. */
#define LOWBIT(name, F)                                                                                           \
  static void gemm_##name(const uint8_t *w, float ws, const void *x, const float *xs, float *y, int m, int k, int n) { \
    (void)ws;                                                                                                     \
    gemm_lowbit(CODE_BITS(F), EF_FMT_##F##_BLOCK, EF_FMT_##F##_BLOCK_BYTES, w, x, xs, y, m, k, n);               \
  }                                                                                                               \
  static void gemm_##name##_vec(const uint8_t *w, float ws, const void *x, const float *xs, float *y, int m, int k, int n) { \
    (void)ws;                                                                                                     \
    gemm_lowbit_vec(CODE_BITS(F), EF_FMT_##F##_BLOCK, EF_FMT_##F##_BLOCK_BYTES, w, x, xs, y, m, k, n);           \
  }
#define BITMOD(name, F, GRIDS)                                                                                    \
  static void gemm_##name(const uint8_t *w, float ws, const void *x, const float *xs, float *y, int m, int k, int n) { \
    (void)ws;                                                                                                     \
    gemm_bitmod(CODE_BITS(F), EF_FMT_##F##_BLOCK, EF_FMT_##F##_BLOCK_BYTES, GRIDS, w, x, xs, y, m, k, n);        \
  }                                                                                                               \
  static void gemm_##name##_vec(const uint8_t *w, float ws, const void *x, const float *xs, float *y, int m, int k, int n) { \
    (void)ws;                                                                                                     \
    gemm_bitmod_vec(CODE_BITS(F), EF_FMT_##F##_BLOCK, EF_FMT_##F##_BLOCK_BYTES, GRIDS, w, x, xs, y, m, k, n);    \
  }

LOWBIT(i2g32, I2G32) LOWBIT(i2g64, I2G64) LOWBIT(i2g128, I2G128)
LOWBIT(i3g32, I3G32) LOWBIT(i3g64, I3G64) LOWBIT(i3g128, I3G128)
LOWBIT(i4g32, I4G32) LOWBIT(i4g64, I4G64) LOWBIT(i4g128, I4G128)
BITMOD(bmd3g128, BMD3G128, EF_BITMOD3_GRIDS) BITMOD(bmd4g128, BMD4G128, EF_BITMOD4_GRIDS)
BITMOD(bmd3g32, BMD3G32, EF_BITMOD3_GRIDS) BITMOD(bmd3g64, BMD3G64, EF_BITMOD3_GRIDS)
BITMOD(bmd4g32, BMD4G32, EF_BITMOD4_GRIDS) BITMOD(bmd4g64, BMD4G64, EF_BITMOD4_GRIDS)

#define ROW(name, F, vec, act_bytes) {#name, gemm_##name, vec, EF_FMT_##F##_BLOCK, EF_FMT_##F##_BLOCK_BYTES, act_bytes}
static const struct { const char *name; gemm_fn naive, vec; size_t block, block_bytes, act_bytes; } KERNELS[] = {
  ROW(f32, F32, gemm_f32, 4),
  ROW(q8_0, Q8_0, gemm_q8_0, 1),
  ROW(tq2, TQ2, gemm_tq2_vec, 1),
  ROW(tq1, TQ1, gemm_tq1_vec, 1),
  ROW(tb1, TB1, gemm_tb1_vec, 1),
  ROW(i2g32, I2G32, gemm_i2g32_vec, 1),
  ROW(i2g64, I2G64, gemm_i2g64_vec, 1),
  ROW(i2g128, I2G128, gemm_i2g128_vec, 1),
  ROW(i3g32, I3G32, gemm_i3g32_vec, 1),
  ROW(i3g64, I3G64, gemm_i3g64_vec, 1),
  ROW(i3g128, I3G128, gemm_i3g128_vec, 1),
  ROW(i4g32, I4G32, gemm_i4g32_vec, 1),
  ROW(i4g64, I4G64, gemm_i4g64_vec, 1),
  ROW(i4g128, I4G128, gemm_i4g128_vec, 1),
  ROW(bmd3g128, BMD3G128, gemm_bmd3g128_vec, 1),
  ROW(bmd4g128, BMD4G128, gemm_bmd4g128_vec, 1),
  ROW(tt4, TT4, gemm_tt4_vec, 1),
  ROW(bmd3g32, BMD3G32, gemm_bmd3g32_vec, 1),
  ROW(bmd3g64, BMD3G64, gemm_bmd3g64_vec, 1),
  ROW(bmd4g32, BMD4G32, gemm_bmd4g32_vec, 1),
  ROW(bmd4g64, BMD4G64, gemm_bmd4g64_vec, 1),
  ROW(f32p8, F32P8, gemm_f32p8, 4),
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc != 10 || (strcmp(argv[2], "naive") && strcmp(argv[2], "vec"))) {
    fprintf(stderr, "usage: native <format> <naive|vec> <m> <k> <n> <iters> <repeat> <in.bin> <out.bin>\n");
    return 2;
  }
  if (!check_bitmod_values()) {
    fprintf(stderr, "native: bitmod_value disagrees with the BitMoD grids of formats.gen.h\n");
    return 2;
  }
  int vec = !strcmp(argv[2], "vec");
  const char *format = argv[1];
  argv++; /* the remaining arguments keep their old positions */
  int m = atoi(argv[2]), k = atoi(argv[3]), n = atoi(argv[4]), iters = atoi(argv[5]), repeat = atoi(argv[6]);
  int which = -1;
  for (size_t i = 0; i < sizeof KERNELS / sizeof KERNELS[0]; i++)
    if (!strcmp(KERNELS[i].name, format)) which = (int)i;
  if (which < 0) {
    fprintf(stderr, "native: no native kernel for format %s\n", format);
    return 2;
  }
  size_t wbytes = (size_t)m * (k / KERNELS[which].block) * KERNELS[which].block_bytes;
  size_t xbytes = (size_t)n * k * KERNELS[which].act_bytes;
  size_t total = 4 + wbytes + xbytes + 4 * (size_t)n;
  uint8_t *buf = malloc(total);
  float *y = malloc(4 * (size_t)n * m);
  FILE *f = fopen(argv[7], "rb");
  if (!f || fread(buf, 1, total, f) != total) {
    fprintf(stderr, "native: cannot read %zu bytes from %s\n", total, argv[7]);
    return 2;
  }
  fclose(f);
  float wscale;
  memcpy(&wscale, buf, 4);
  const uint8_t *w = buf + 4;
  const void *x = buf + 4 + wbytes;
  float *xs = malloc(4 * (size_t)n);
  memcpy(xs, buf + 4 + wbytes + xbytes, 4 * (size_t)n);
  for (int r = 0; r < repeat; r++) {
    double t0 = now();
    gemm_fn fn = vec ? KERNELS[which].vec : KERNELS[which].naive;
    for (int i = 0; i < iters; i++) fn(w, wscale, x, xs, y, m, k, n);
    printf("%.9f\n", now() - t0);
  }
  f = fopen(argv[8], "wb");
  fwrite(y, 4, (size_t)n * m, f);
  fclose(f);
  return 0;
}
