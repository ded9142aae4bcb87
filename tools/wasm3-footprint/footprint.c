/* wasm3's own heap and native stack while it runs the device app: loads app.wasm, links
 * edge.weights_read over a weight image, writes the model descriptor, calls model_init and decodes
 * a few tokens. Prints one JSON line: the peak of wasm3's allocations split into linear memory, the
 * wasm stack and the rest (runtime, module, compiled code), and the native stack the calls used.
 * Built by tools/wasm3-footprint/measure.ts with the embedded (ESP32) wasm3 settings, -m32 and -m64.
 * Usage: footprint app.wasm desc.bin weights.bin stack_bytes tokens */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wasm3.h"

/* count.h is forced into every file of the build; this one implements it with the real allocator. */
#undef calloc
#undef realloc
#undef free

static size_t live, peak;
typedef struct { size_t size; size_t pad; } hdr_t; /* keeps 8/16-byte alignment */

void *cnt_calloc(size_t n, size_t size) {
  hdr_t *h = calloc(1, sizeof(hdr_t) + n * size);
  if (!h) return NULL;
  h->size = n * size;
  live += h->size;
  if (live > peak) peak = live;
  return h + 1;
}
void *cnt_realloc(void *p, size_t size) {
  if (!p) return cnt_calloc(1, size);
  hdr_t *h = (hdr_t *)p - 1;
  size_t old = h->size;
  hdr_t *n = realloc(h, sizeof(hdr_t) + size);
  if (!n) return NULL;
  n->size = size;
  live = live - old + size;
  if (live > peak) peak = live;
  return n + 1;
}
void cnt_free(void *p) {
  if (!p) return;
  hdr_t *h = (hdr_t *)p - 1;
  live -= h->size;
  free(h);
}

static uint8_t *wasm, *desc, *weights;
static size_t wasm_n, desc_n, weights_n;
static uint32_t stack_bytes, tokens;

static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "cannot open %s\n", path); exit(1); }
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(*n ? *n : 1);
  if (fread(b, 1, *n, f) != *n) { fprintf(stderr, "cannot read %s\n", path); exit(1); }
  fclose(f);
  return b;
}

m3ApiRawFunction(weights_read) {
  m3ApiGetArg(uint32_t, dst);
  m3ApiGetArg(uint32_t, off);
  m3ApiGetArg(uint32_t, len);
  if ((uint64_t)dst + len > m3_GetMemorySize(runtime) || (uint64_t)off + len > weights_n) m3ApiTrap("weights_read out of range");
  memcpy((uint8_t *)_mem + dst, weights + off, len);
  m3ApiSuccess();
}

#define CHECK(r) do { M3Result e_ = (r); if (e_) { fprintf(stderr, "wasm3: %s (line %d)\n", e_, __LINE__); exit(1); } } while (0)

static IM3Function fn(IM3Runtime rt, const char *name) {
  IM3Function f;
  CHECK(m3_FindFunction(&f, rt, name));
  return f;
}

static uint32_t linear, peak_after_init;

static void *run(void *arg) {
  (void)arg;
  IM3Environment env = m3_NewEnvironment();
  IM3Runtime rt = m3_NewRuntime(env, stack_bytes, NULL);
  IM3Module mod;
  CHECK(m3_ParseModule(env, &mod, wasm, (uint32_t)wasm_n));
  CHECK(m3_LoadModule(rt, mod));
  CHECK(m3_LinkRawFunction(mod, "edge", "weights_read", "v(iii)", &weights_read));
  CHECK(m3_CallV(fn(rt, "arena_reset")));
  CHECK(m3_CallV(fn(rt, "arena_alloc"), (uint32_t)desc_n));
  uint32_t at = 0;
  CHECK(m3_GetResultsV(fn(rt, "arena_alloc"), &at));
  memcpy(m3_GetMemory(rt, NULL, 0) + at, desc, desc_n);
  int32_t code = -1;
  CHECK(m3_CallV(fn(rt, "model_init"), at));
  CHECK(m3_GetResultsV(fn(rt, "model_init"), &code));
  if (code != 0) { fprintf(stderr, "model_init returned %d\n", code); exit(1); }
  peak_after_init = (uint32_t)peak;
  uint32_t tp = 0;
  CHECK(m3_CallV(fn(rt, "model_tokens")));
  CHECK(m3_GetResultsV(fn(rt, "model_tokens"), &tp));
  for (uint32_t pos = 0; pos < tokens; pos++) {
    int32_t tok = 1 + (int32_t)pos;
    memcpy(m3_GetMemory(rt, NULL, 0) + tp, &tok, 4);
    CHECK(m3_CallV(fn(rt, "model_forward"), 1, pos, 1));
    CHECK(m3_GetResultsV(fn(rt, "model_forward"), &code));
    if (code != 0) { fprintf(stderr, "model_forward returned %d\n", code); exit(1); }
  }
  linear = m3_GetMemorySize(rt);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 6) { fprintf(stderr, "usage: footprint app.wasm desc.bin weights.bin stack_bytes tokens\n"); return 2; }
  wasm = slurp(argv[1], &wasm_n);
  desc = slurp(argv[2], &desc_n);
  weights = slurp(argv[3], &weights_n);
  stack_bytes = (uint32_t)atoi(argv[4]);
  tokens = (uint32_t)atoi(argv[5]);
  /* Run on a thread whose stack is painted, to see how deep the interpreter went. */
  size_t ss = 8u << 20;
  uint8_t *stack = malloc(ss);
  memset(stack, 0xa5, ss);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, ss);
  pthread_t t;
  if (pthread_create(&t, &attr, run, NULL)) { fprintf(stderr, "pthread_create failed\n"); return 1; }
  pthread_join(t, NULL);
  size_t untouched = 0;
  while (untouched < ss && stack[untouched] == 0xa5) untouched++;
  printf("{\"pointer_bytes\":%u,\"peak\":%zu,\"peak_after_init\":%u,\"linear\":%u,\"wasm_stack\":%u,\"other\":%zu,\"native_stack\":%zu}\n",
         (unsigned)sizeof(void *), peak, peak_after_init, linear, stack_bytes, peak - linear - stack_bytes, ss - untouched);
  return 0;
}
