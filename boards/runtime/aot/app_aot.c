/* The app layer ahead of time: build/device.wasm translated to C by wasm2c (the Makefile's `aot`
 * target) and compiled into the runtime, every load and store bounds-checked (aot/aot_rt.c). It runs
 * only the app it was built from: an image whose app section has another SHA-256 is refused, so the
 * image and the code that runs it can never disagree. The host imports are the same link table as
 * wasm3's (core/imports.c), with the same checks and the same messages. */
#include "../core/app.h"
#include <stdio.h>
#include <string.h>
#include "aot_rt.h"
#include "../core/sha256.h"
#include "app_aot.gen.h"   /* build/aot/: wasm2c's header, the app's SHA-256 and its i32 exports */

struct Z_edge_instance_t { struct ef_app *app; };

struct ef_app {
  Z_app_instance_t inst;
  struct Z_edge_instance_t edge;
  const ef_image *img;
  ef_log_fn log;
  void *log_ctx;
  uint32_t cap;
  int live;           /* instantiated: inst owns its memory */
  char trap[160];     /* the message of the import that trapped last */
};

static ef_app the_app;  /* one app at a time */

const char EF_APP_ENGINE[] = "aot";

static wasm_rt_memory_t *memory(ef_app *a) { return Z_appZ_memory(&a->inst); }

uint8_t *ef_app_guest(ef_app *a, uint32_t ptr, uint32_t len) {
  wasm_rt_memory_t *m = memory(a);
  if ((uint64_t)ptr + len > m->size) return 0;
  return m->data + ptr;
}

/* An import's trap: the message, then back to the call in progress (call_begin's setjmp). */
static WASM_RT_NO_RETURN void import_trap(ef_app *a, const char *fmt, uint32_t x, uint32_t y) {
  snprintf(a->trap, sizeof a->trap, fmt, (unsigned)x, (unsigned)y);
  wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE);
}

/* edge.abort's strings: UTF-16 with their byte length at ptr - 4; only ASCII is kept (as app.c). */
static void as_string(ef_app *a, uint32_t ptr, char *out, uint32_t cap) {
  const uint8_t *hdr, *s;
  uint32_t len, i, o = 0;
  out[0] = 0;
  if (ptr < 4 || !(hdr = ef_app_guest(a, ptr - 4, 4))) return;
  len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
  if (!(s = ef_app_guest(a, ptr, len))) return;
  for (i = 0; i + 1 < len && o + 1 < cap; i += 2) out[o++] = (s[i + 1] == 0 && s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
  out[o] = 0;
}

/* The imports, named as wasm2c names module `edge`'s functions. Those the app does not import are unused. */
void Z_edgeZ_abort(struct Z_edge_instance_t *e, u32 pmsg, u32 pfile, u32 line, u32 col);
void Z_edgeZ_log(struct Z_edge_instance_t *e, u32 ptr, u32 len);
void Z_edgeZ_weights_read(struct Z_edge_instance_t *e, u32 dst, u32 offset, u32 len);

void Z_edgeZ_abort(struct Z_edge_instance_t *e, u32 pmsg, u32 pfile, u32 line, u32 col) {
  ef_app *a = e->app;
  char msg[64], file[64];
  as_string(a, pmsg, msg, sizeof msg);
  as_string(a, pfile, file, sizeof file);
  snprintf(a->trap, sizeof a->trap, "wasm abort: %s at %s:%u:%u", msg, file, (unsigned)line, (unsigned)col);
  wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE);
}

void Z_edgeZ_log(struct Z_edge_instance_t *e, u32 ptr, u32 len) {
  ef_app *a = e->app;
  const uint8_t *p = ef_app_guest(a, ptr, len);
  if (!p) import_trap(a, "log: guest range [%u, +%u) is outside linear memory", ptr, len);
  if (a->log) a->log(a->log_ctx, (const char *)p, len);
}

/* edge.weights_read(dst, offset, len): from the booted image where it lies (memory-mapped flash). */
void Z_edgeZ_weights_read(struct Z_edge_instance_t *e, u32 dst, u32 offset, u32 len) {
  ef_app *a = e->app;
  uint8_t *d;
  if ((uint64_t)offset + len > a->img->total_size) import_trap(a, "weights_read: image range [%u, +%u) is outside the image", offset, len);
  if (!(d = ef_app_guest(a, dst, len))) import_trap(a, "weights_read: guest range [%u, +%u) is outside linear memory", dst, len);
  memcpy(d, a->img->bytes + offset, len);
}

/* A trap's line: an import's own message, else wasm2c's trap named as wasm3 names it. */
static void trap_line(ef_app *a, int code, const char *name, char *err, uint32_t cap) {
  if (a->trap[0]) snprintf(err, cap, "app trapped in '%s': %s", name, a->trap);
  else snprintf(err, cap, "app trapped in '%s': [trap] %s", name, wasm_rt_strerror((wasm_rt_trap_t)code));
}

static ef_app *fail(ef_app *a, char *err, uint32_t cap, const char *what, const char *why) {
  if (err && cap) snprintf(err, cap, "aot: %s: %s", what, why);
  ef_app_unload(a);
  return 0;
}

static void hex(const uint8_t *b, char *out) {
  static const char D[] = "0123456789abcdef";
  int i;
  for (i = 0; i < 32; i++) { out[2 * i] = D[b[i] >> 4]; out[2 * i + 1] = D[b[i] & 15]; }
  out[64] = 0;
}

ef_app *ef_app_load(const ef_image *img, uint32_t stack_bytes, ef_log_fn log, void *log_ctx, char *err, uint32_t err_cap) {
  static int module_ready;
  ef_app *a = &the_app;
  uint8_t digest[32];
  char theirs[65], ours[65], why[200];
  jmp_buf jb;
  int code;
  (void)stack_bytes;   /* the translated app runs on the C stack; wasm2c counts its call depth */
  ef_app_unload(a);
  a->img = img;
  a->log = log;
  a->log_ctx = log_ctx;
  a->cap = img->config.planned_linear;
  a->edge.app = a;
  ef_sha256_once(img->bytes + img->app->offset, img->app->size, digest);
  if (memcmp(digest, EF_AOT_APP_SHA256, 32) != 0) {
    hex(digest, theirs);
    hex(EF_AOT_APP_SHA256, ours);
    snprintf(why, sizeof why, "the image's app (sha256 %.16s...) is not the one compiled into this runtime (%.16s...)", theirs, ours);
    return fail(a, err, err_cap, "app", why);
  }
  if (!module_ready) {
    wasm_rt_init();
    Z_app_init_module();
    module_ready = 1;
  }
  /* the plan's bytes exactly, not whole 64 KiB pages, as app.c caps wasm3 */
  ef_aot_rt_set_cap(a->cap);
  wasm_rt_call_stack_depth = 0;
  ef_aot_rt_catch(&jb);
  if ((code = setjmp(jb)) != 0) {
    ef_aot_rt_catch(0);
    trap_line(a, code, "start", why, sizeof why);
    a->live = 1;   /* memory may be allocated: unload frees it */
    return fail(a, err, err_cap, "start", why);
  }
  Z_app_instantiate(&a->inst, &a->edge);   /* memory, data segments, the start function */
  ef_aot_rt_catch(0);
  a->live = 1;
  return a;
}

void ef_app_unload(ef_app *a) {
  if (!a) return;
  if (a->live && memory(a)->data) Z_app_free(&a->inst);
  memset(a, 0, sizeof *a);
}

static const ef_aot_export *find(const char *name) {
  uint32_t i;
  for (i = 0; i < EF_AOT_EXPORT_COUNT; i++) if (strcmp(EF_AOT_EXPORTS[i].name, name) == 0) return &EF_AOT_EXPORTS[i];
  return 0;
}

int ef_app_has(ef_app *a, const char *name) {
  (void)a;
  return find(name) != 0 || strcmp(name, "sampler_init") == 0 || strcmp(name, "sampler_state") == 0;
}

typedef u32 (*fr0)(Z_app_instance_t *);
typedef u32 (*fr1)(Z_app_instance_t *, u32);
typedef u32 (*fr2)(Z_app_instance_t *, u32, u32);
typedef u32 (*fr3)(Z_app_instance_t *, u32, u32, u32);
typedef void (*fv0)(Z_app_instance_t *);
typedef void (*fv1)(Z_app_instance_t *, u32);
typedef void (*fv2)(Z_app_instance_t *, u32, u32);
typedef void (*fv3)(Z_app_instance_t *, u32, u32, u32);
typedef void (*fv6)(Z_app_instance_t *, u32, u32, u32, u32, u32, u32);

/* One call of an i32-only export by its shape (argc, returns); -1 as `shape` for one this runtime
 * does not call. Apart from ef_app_call so that no local of the caller changes between its setjmp
 * and a trap's longjmp (gcc's -Wclobbered, which the firmware's -Wextra -Werror build enables). */
static int shape(const ef_aot_export *x) {
  int s = x->argc * 2 + x->ret;
  return (s <= 7 || s == 12) ? s : -1;
}
static u32 call_export(const ef_aot_export *x, Z_app_instance_t *in, const uint32_t *argv) {
  switch (shape(x)) {
    case 0: ((fv0)x->fn)(in); return 0;
    case 1: return ((fr0)x->fn)(in);
    case 2: ((fv1)x->fn)(in, argv[0]); return 0;
    case 3: return ((fr1)x->fn)(in, argv[0]);
    case 4: ((fv2)x->fn)(in, argv[0], argv[1]); return 0;
    case 5: return ((fr2)x->fn)(in, argv[0], argv[1]);
    case 6: ((fv3)x->fn)(in, argv[0], argv[1], argv[2]); return 0;
    case 7: return ((fr3)x->fn)(in, argv[0], argv[1], argv[2]);
    default: ((fv6)x->fn)(in, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5]); return 0;   /* 12 */
  }
}

/* The one place a call into the translated app runs: a trap (wasm_rt_trap's longjmp) comes back here
 * as the error line; setjmp must stay in the frame that calls, so every call goes through this
 * function. What it calls: export x with i32 arguments, or (x == NULL) the ABI's sampler_init with
 * v (f32, f32, i64), or sampler_state when v is NULL too. */
static int guarded_call(ef_app *a, const char *name, const ef_aot_export *x, const uint32_t *argv, const ef_val *v, uint64_t *out, char *err, uint32_t err_cap) {
  jmp_buf jb;
  int code;
  a->trap[0] = 0;
  wasm_rt_call_stack_depth = 0;
  ef_aot_rt_catch(&jb);
  if ((code = setjmp(jb)) != 0) {
    ef_aot_rt_catch(0);
    trap_line(a, code, name, err, err_cap);
    return -1;
  }
  if (x) *out = call_export(x, &a->inst, argv);
  else if (v) { Z_appZ_sampler_init(&a->inst, v[0].v.f, v[1].v.f, v[2].v.I); *out = 0; }
  else *out = Z_appZ_sampler_state(&a->inst);
  ef_aot_rt_catch(0);
  return 0;
}

int ef_app_call(ef_app *a, const char *name, uint32_t argc, const uint32_t *argv, int32_t *result, char *err, uint32_t err_cap) {
  const ef_aot_export *x = find(name);
  uint64_t r;
  if (!x) { snprintf(err, err_cap, "app: no export '%s' (function lookup failed)", name); return -1; }
  if (x->argc != argc) { snprintf(err, err_cap, "app: export '%s' does not take %u arguments", name, (unsigned)argc); return -1; }
  if (shape(x) < 0) { snprintf(err, err_cap, "app: export '%s' takes %u arguments, more than this runtime calls", name, (unsigned)argc); return -1; }
  if (guarded_call(a, name, x, argv, 0, &r, err, err_cap)) return -1;
  if (result) *result = (int32_t)r;
  return 0;
}

/* Typed calls: i32-only exports through ef_app_call; the ABI's two others by name, sampler_init
 * v(ffI) and sampler_state I() (docs/abi.md), their types checked as wasm3 checks them. */
int ef_app_callv(ef_app *a, const char *name, uint32_t argc, const ef_val *argv, ef_val *result, char *err, uint32_t err_cap) {
  uint64_t st;
  uint32_t i, args[8];
  int32_t r = 0;
  int sampler_init = strcmp(name, "sampler_init") == 0, sampler_state = strcmp(name, "sampler_state") == 0;
  if (!sampler_init && !sampler_state) {
    if (argc > 8) { snprintf(err, err_cap, "app: export '%s' does not take %u arguments", name, (unsigned)argc); return -1; }
    for (i = 0; i < argc; i++) {
      if (argv[i].type != 'i') { snprintf(err, err_cap, "app: export '%s' argument %u is not of type %c", name, (unsigned)i, argv[i].type); return -1; }
      args[i] = argv[i].v.i;
    }
    if (ef_app_call(a, name, argc, args, &r, err, err_cap)) return -1;
    if (result) { result->type = find(name)->ret ? 'i' : 0; result->v.i = (uint32_t)r; }
    return 0;
  }
  if (sampler_init && (argc != 3 || argv[0].type != 'f' || argv[1].type != 'f' || argv[2].type != 'I')) { snprintf(err, err_cap, "app: export 'sampler_init' takes (f32, f32, i64)"); return -1; }
  if (sampler_state && argc != 0) { snprintf(err, err_cap, "app: export 'sampler_state' does not take %u arguments", (unsigned)argc); return -1; }
  if (guarded_call(a, name, 0, 0, sampler_init ? argv : 0, &st, err, err_cap)) return -1;
  if (result) {
    if (sampler_init) result->type = 0;
    else { result->type = 'I'; result->v.I = st; }
  }
  return 0;
}

uint32_t ef_app_memory(ef_app *a) { return a->live ? memory(a)->size : 0; }
uint32_t ef_app_memory_cap(ef_app *a) { return a->cap; }

/* As app.c: where the plan's cap is above the board's bytes, growing past them fails (aot_rt.c). */
void ef_app_limit_memory(ef_app *a, uint32_t bytes) {
  if (!bytes || (a->cap && a->cap <= bytes)) return;
  ef_aot_rt_set_board_max(bytes);
}
