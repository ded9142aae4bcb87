/* Native C baselines for `edge-flash bench`: plain scalar reference kernels over the same packed
 * formats as the WASM kernels (layouts in docs/formats.md), single thread. The bench compiles this
 * file twice in the same run: `-O3` (the naive baseline) and `-O3 -march=native` (auto-vectorized).
 *
 * Each format has two kernels: `naive` (decode one weight at a time: what the -O3 build runs) and
 * `vec` (the same arithmetic with loops shaped for the auto-vectorizer: what the -march=native build
 * runs, as a best-effort vectorized baseline).
 *
 * usage: native <format> <naive|vec> <m> <k> <n> <iters> <repeat> <in.bin> <out.bin>
 *   in.bin:  f32 wscale, then the packed (m, k) weights, then (n, k) activations (i8, or f32 for f32),
 *            then (n) f32 activation scales
 *   out.bin: (n, m) f32 results of the last call
 *   stdout:  one line per repeat: seconds for `iters` calls
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static const struct { const char *name; gemm_fn naive, vec; size_t block, block_bytes, act_bytes; } KERNELS[] = {
  {"tq2", gemm_tq2, gemm_tq2_vec, 64, 16, 1},
  {"tq1", gemm_tq1, gemm_tq1_vec, 64, 13, 1},
  {"tb1", gemm_tb1, gemm_tb1_vec, 64, 16, 1},
  {"tt4", gemm_tt4, gemm_tt4_vec, 64, 16, 1},
  {"f32", gemm_f32, gemm_f32, 1, 4, 4},
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
