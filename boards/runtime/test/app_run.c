/* app_run: the C runtime's app layer driving a packed image (format 3) as a board does and as the host's
 * ModelRuntime does: the image read with every check (ef_image_read), its descriptor section copied
 * into linear memory for model_init, edge.weights_read serving the image's bytes, linear memory capped
 * at the image's planned_linear (or --cap). Built twice from this one source: on the wasm3 app layer
 * (build/app_run) and on the AOT one (build/app_run-aot), so both make the same calls and their
 * outputs can be compared byte for byte (test/runtime-aot.test.ts; host/bench/aot.ts times it).
 *   app_run --image FILE [--board-id N] [--cap BYTES] [--stack BYTES] --decode N
 *       greedy from BOS for N positions (model_step); the tokens on stdout, one line; on stderr run.c's
 *       "achieved tok/s: X" (positions after the first over the time after the first)
 *   app_run --image FILE [...] --generate N --prompt TEXT
 *       the app's generate (gen_begin, gen_next until it ends), greedy; the text and a newline on stdout
 *   app_run --build   how the app layer was compiled (the Makefile's EF_APP_BUILD), one line
 * Errors: one line `app_run (ENGINE): ...` on stderr, exit 2.
 * Built for a board without files (tools/bench/isa: bare-metal RV32IMC), a force-included header defines
 * EF_APP_RUN_LOAD (the image where it lies instead of read into the heap) and EF_APP_RUN_STEP (called
 * after each decode step: the harness counts instructions there). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include "../core/app.h"

static int die(const char *what, const char *why) {
  fprintf(stderr, "app_run (%s): %s: %s\n", EF_APP_ENGINE, what, why);
  return 2;
}

#ifndef EF_APP_RUN_STEP
#define EF_APP_RUN_STEP()
#endif
#ifdef EF_APP_RUN_LOAD
#define EF_APP_RUN_FREE(p) ((void)(p))
#else
#define EF_APP_RUN_LOAD slurp
#define EF_APP_RUN_FREE free
static uint8_t *slurp(const char *path, long *n) {
  FILE *f;
  uint8_t *b = 0;
  if (!(f = fopen(path, "rb"))) return 0;
  if (fseek(f, 0, SEEK_END) == 0 && (*n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)*n + 1))) {
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) { free(b); b = 0; }
  }
  fclose(f);
  return b;
}
#endif

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void log_stderr(void *ctx, const char *text, uint32_t len) {
  (void)ctx;
  fprintf(stderr, "app: %.*s\n", (int)len, text);
}

#define USAGE "app_run --image FILE [--board-id N] [--cap BYTES] [--stack BYTES] (--decode N | --generate N --prompt TEXT)"
int main(int argc, char **argv) {
  const char *prompt = 0, *image = 0;
  long decode = -1, generate = -1, cap = 0, stack = 1 << 20, board_id = 1, n_bytes = 0, nd;
  uint8_t *bytes, *desc, *p;
  ef_read_opts ro;
  ef_image_err ie;
  ef_image img;
  ef_app *a;
  char err[256];
  int32_t r, at;
  uint32_t arg[3];
  int i;
#ifndef EF_APP_BUILD
#define EF_APP_BUILD "?"
#endif
  if (argc == 2 && !strcmp(argv[1], "--build")) { printf("%s %s\n", EF_APP_ENGINE, EF_APP_BUILD); return 0; }
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--decode") && i + 1 < argc) decode = atol(argv[++i]);
    else if (!strcmp(argv[i], "--generate") && i + 1 < argc) generate = atol(argv[++i]);
    else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) prompt = argv[++i];
    else if (!strcmp(argv[i], "--cap") && i + 1 < argc) cap = atol(argv[++i]);
    else if (!strcmp(argv[i], "--stack") && i + 1 < argc) stack = atol(argv[++i]);
    else if (!strcmp(argv[i], "--image") && i + 1 < argc) image = argv[++i];
    else if (!strcmp(argv[i], "--board-id") && i + 1 < argc) board_id = atol(argv[++i]);
    else return die("usage", USAGE);
  }
  if (!image || (decode < 1) == (generate < 0) || (generate >= 0 && !prompt)) return die("usage", USAGE);
  {
    char msg[200];
    if (!(bytes = EF_APP_RUN_LOAD(image, &n_bytes))) return die(image, "cannot read");
    memset(&ro, 0, sizeof ro);
    ro.board_id = (uint16_t)board_id;
    if ((ie = ef_image_read(bytes, (uint64_t)n_bytes, &ro, &img, msg, sizeof msg))) return die(ef_image_code(ie), msg);
    if (cap) img.config.planned_linear = (uint32_t)cap;
    desc = bytes + img.descriptor->offset;
    nd = (long)img.descriptor->size;
  }
#ifdef __GLIBC__
  {
    /* what the app layer allocates beside linear memory (wasm3: its runtime and the compiled code) */
    size_t before = mallinfo2().uordblks;
    if (!(a = ef_app_load(&img, (uint32_t)stack, log_stderr, 0, err, sizeof err))) return die("load", err);
    fprintf(stderr, "app layer heap: %lu bytes beside %u of linear memory\n", (unsigned long)(mallinfo2().uordblks - before - ef_app_memory(a)), (unsigned)ef_app_memory(a));
  }
#else
  if (!(a = ef_app_load(&img, (uint32_t)stack, log_stderr, 0, err, sizeof err))) return die("load", err);
#endif
  if (ef_app_call(a, "arena_reset", 0, 0, 0, err, sizeof err)) return die("arena_reset", err);
  arg[0] = (uint32_t)nd;
  if (ef_app_call(a, "arena_alloc", 1, arg, &at, err, sizeof err)) return die("arena_alloc", err);
  if (!at || !(p = ef_app_guest(a, (uint32_t)at, (uint32_t)nd))) return die("descriptor", "out of linear memory");
  memcpy(p, desc, (size_t)nd);
  arg[0] = (uint32_t)at;
  if (ef_app_call(a, "model_init", 1, arg, &r, err, sizeof err)) return die("model_init", err);
  if (r != 0) { snprintf(err, sizeof err, "code %d", (int)r); return die("model_init", err); }
  {
    ef_val v[3];
    v[0].type = 'f'; v[0].v.f = 0.0f;
    v[1].type = 'f'; v[1].v.f = 0.9f;
    v[2].type = 'I'; v[2].v.I = 1;
    if (ef_app_callv(a, "sampler_init", 3, v, 0, err, sizeof err)) return die("sampler_init", err);
  }
  if (decode > 0) {
    int32_t tok = 1;
    double t1 = 0;
    long pos;
    for (pos = 0; pos < decode; pos++) {
      arg[0] = (uint32_t)tok;
      arg[1] = (uint32_t)pos;
      if (ef_app_call(a, "model_step", 2, arg, &tok, err, sizeof err)) return die("model_step", err);
      if (tok < 0) return die("model_step", "outside the plan");
      printf(pos ? " %d" : "%d", (int)tok);
      EF_APP_RUN_STEP();
      if (pos == 0) t1 = now_s();
    }
    printf("\n");
    if (decode > 1) fprintf(stderr, "achieved tok/s: %f\n", (double)(decode - 1) / (now_s() - t1));
  } else {
    size_t len = strlen(prompt);
    int32_t tp, piece, n;
    if (ef_app_call(a, "tok_text", 0, 0, &tp, err, sizeof err)) return die("tok_text", err);
    if (!(p = ef_app_guest(a, (uint32_t)tp, (uint32_t)len))) return die("prompt", "outside linear memory");
    memcpy(p, prompt, len);
    arg[0] = (uint32_t)len;
    arg[1] = (uint32_t)generate;
    if (ef_app_call(a, "gen_begin", 2, arg, &n, err, sizeof err)) return die("gen_begin", err);
    if (n < 0) { snprintf(err, sizeof err, "code %d", (int)n); return die("gen_begin", err); }
    for (;;) {
      if (ef_app_call(a, "gen_next", 0, 0, &n, err, sizeof err)) return die("gen_next", err);
      if (n < 0) break;
      if (ef_app_call(a, "tok_piece", 0, 0, &piece, err, sizeof err)) return die("tok_piece", err);
      if (!(p = ef_app_guest(a, (uint32_t)piece, (uint32_t)n))) return die("tok_piece", "outside linear memory");
      fwrite(p, 1, (size_t)n, stdout);
    }
    printf("\n");
    fprintf(stderr, "end: %d\n", (int)n);
  }
  ef_app_unload(a);
  EF_APP_RUN_FREE(bytes);
  return 0;
}
