#include "app.h"
#include <stdio.h>
#include <string.h>
#include "m3_env.h"   /* wasm3's runtime struct: memoryLimit (the addon caps memory the same way) */
#include "wasm3.h"

struct ef_app {
  IM3Environment env;
  IM3Runtime rt;
  IM3Module mod;
  const ef_image *img;
  ef_log_fn log;
  void *log_ctx;
  uint32_t cap;
  char trap[160];     /* the message of the import that trapped last */
};

static ef_app the_app;  /* one app at a time */

/* Bytes [ptr, ptr + len) of linear memory, or NULL: unsigned 64-bit sums, never past the end. */
static uint8_t *guest(IM3Runtime rt, uint32_t ptr, uint32_t len) {
  uint32_t size = 0;
  uint8_t *mem = m3_GetMemory(rt, &size, 0);
  if (!mem || (uint64_t)ptr + len > size) return 0;
  return mem + ptr;
}

static const void *trap(ef_app *a, const char *fmt, uint32_t x, uint32_t y) {
  snprintf(a->trap, sizeof a->trap, fmt, (unsigned)x, (unsigned)y);
  return a->trap;   /* wasm3 returns a non-NULL result as the call's error */
}

/* edge.abort(msg, file, line, col): an AssemblyScript assertion; the strings are UTF-16 with their
 * byte length at ptr - 4. Only ASCII is kept for the message line. */
static void as_string(IM3Runtime rt, uint32_t ptr, char *out, uint32_t cap) {
  const uint8_t *hdr, *s;
  uint32_t len, i, o = 0;
  out[0] = 0;
  if (ptr < 4 || !(hdr = guest(rt, ptr - 4, 4))) return;
  len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
  if (!(s = guest(rt, ptr, len))) return;
  for (i = 0; i + 1 < len && o + 1 < cap; i += 2) out[o++] = (s[i + 1] == 0 && s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
  out[o] = 0;
}

static m3ApiRawFunction(h_abort) {
  ef_app *a = (ef_app *)m3_GetUserData(runtime);
  char msg[64], file[64];
  m3ApiGetArg(uint32_t, pmsg);
  m3ApiGetArg(uint32_t, pfile);
  m3ApiGetArg(uint32_t, line);
  m3ApiGetArg(uint32_t, col);
  (void)_mem; (void)_ctx;
  as_string(runtime, pmsg, msg, sizeof msg);
  as_string(runtime, pfile, file, sizeof file);
  snprintf(a->trap, sizeof a->trap, "wasm abort: %s at %s:%u:%u", msg, file, (unsigned)line, (unsigned)col);
  return a->trap;
}

static m3ApiRawFunction(h_log) {
  ef_app *a = (ef_app *)m3_GetUserData(runtime);
  const uint8_t *p;
  m3ApiGetArg(uint32_t, ptr);
  m3ApiGetArg(uint32_t, len);
  (void)_mem; (void)_ctx;
  if (!(p = guest(runtime, ptr, len))) return trap(a, "log: guest range [%u, +%u) is outside linear memory", ptr, len);
  if (a->log) a->log(a->log_ctx, (const char *)p, len);
  m3ApiSuccess();
}

/* edge.weights_read(dst, offset, len): from the booted image where it lies (memory-mapped flash). */
static m3ApiRawFunction(h_weights_read) {
  ef_app *a = (ef_app *)m3_GetUserData(runtime);
  uint8_t *d;
  m3ApiGetArg(uint32_t, dst);
  m3ApiGetArg(uint32_t, offset);
  m3ApiGetArg(uint32_t, len);
  (void)_mem; (void)_ctx;
  if ((uint64_t)offset + len > a->img->total_size) return trap(a, "weights_read: image range [%u, +%u) is outside the image", offset, len);
  if (!(d = guest(runtime, dst, len))) return trap(a, "weights_read: guest range [%u, +%u) is outside linear memory", dst, len);
  memcpy(d, a->img->bytes + offset, len);
  m3ApiSuccess();
}

/* in EF_IMPORTS' order (core/imports.c) */
static const M3RawCall HANDLERS[] = {h_abort, h_log, h_weights_read};

static ef_app *fail(ef_app *a, char *err, uint32_t cap, const char *what, const char *why) {
  if (err && cap) snprintf(err, cap, "wasm3: %s: %s", what, why ? why : "failed");
  ef_app_unload(a);
  return 0;
}

ef_app *ef_app_load(const ef_image *img, uint32_t stack_bytes, ef_log_fn log, void *log_ctx, char *err, uint32_t err_cap) {
  ef_app *a = &the_app;
  M3Result r;
  uint32_t i;
  ef_app_unload(a);
  a->img = img;
  a->log = log;
  a->log_ctx = log_ctx;
  a->cap = img->config.planned_linear;
  if (!(a->env = m3_NewEnvironment())) return fail(a, err, err_cap, "environment", "out of memory");
  if (!(a->rt = m3_NewRuntime(a->env, stack_bytes, a))) return fail(a, err, err_cap, "runtime", "out of memory");
  /* the plan's bytes exactly, not whole 64 KiB pages (docs/image-format.md, notes for the board) */
  if (a->cap) a->rt->memoryLimit = a->cap;
  if ((r = m3_ParseModule(a->env, &a->mod, img->bytes + img->app->offset, img->app->size))) return fail(a, err, err_cap, "parse", r);
  if ((r = m3_LoadModule(a->rt, a->mod))) { a->mod = 0; return fail(a, err, err_cap, "load", r); }
  for (i = 0; i < EF_IMPORT_COUNT; i++) {
    r = m3_LinkRawFunction(a->mod, EF_IMPORTS[i].module, EF_IMPORTS[i].name, EF_IMPORTS[i].sig, HANDLERS[i]);
    if (r && r != m3Err_functionLookupFailed) return fail(a, err, err_cap, EF_IMPORTS[i].name, r);
  }
  if ((r = m3_CompileModule(a->mod))) return fail(a, err, err_cap, "compile", r);
  if ((r = m3_RunStart(a->mod))) return fail(a, err, err_cap, "start", r);
  return a;
}

void ef_app_unload(ef_app *a) {
  if (!a) return;
  if (a->rt) m3_FreeRuntime(a->rt);   /* frees the loaded module with it */
  else if (a->mod) m3_FreeModule(a->mod);
  if (a->env) m3_FreeEnvironment(a->env);
  memset(a, 0, sizeof *a);
}

int ef_app_has(ef_app *a, const char *name) {
  IM3Function f;
  return m3_FindFunction(&f, a->rt, name) == m3Err_none;
}

static char type_char(M3ValueType t) {
  return t == c_m3Type_i32 ? 'i' : t == c_m3Type_i64 ? 'I' : t == c_m3Type_f32 ? 'f' : t == c_m3Type_f64 ? 'F' : '?';
}

int ef_app_callv(ef_app *a, const char *name, uint32_t argc, const ef_val *argv, ef_val *result, char *err, uint32_t err_cap) {
  IM3Function f;
  M3Result r;
  const void *args[8];
  uint32_t i;
  if ((r = m3_FindFunction(&f, a->rt, name))) { snprintf(err, err_cap, "app: no export '%s' (%s)", name, r); return -1; }
  if (argc > 8 || m3_GetArgCount(f) != argc || m3_GetRetCount(f) > 1) { snprintf(err, err_cap, "app: export '%s' does not take %u arguments", name, (unsigned)argc); return -1; }
  for (i = 0; i < argc; i++) {
    if (type_char(m3_GetArgType(f, i)) != argv[i].type) { snprintf(err, err_cap, "app: export '%s' argument %u is not of type %c", name, (unsigned)i, argv[i].type); return -1; }
    args[i] = argv[i].type == 'I' ? (const void *)&argv[i].v.I : argv[i].type == 'f' ? (const void *)&argv[i].v.f : (const void *)&argv[i].v.i;
  }
  a->trap[0] = 0;
  if ((r = m3_Call(f, argc, args))) {
    M3ErrorInfo info;
    m3_GetErrorInfo(a->rt, &info);
    snprintf(err, err_cap, "app trapped in '%s': %s%s%s", name, r, info.message && *info.message ? ": " : "", info.message ? info.message : "");
    if (a->trap[0] && r == a->trap) snprintf(err, err_cap, "app trapped in '%s': %s", name, a->trap);
    return -1;
  }
  if (result) memset(result, 0, sizeof *result);
  if (m3_GetRetCount(f) == 1) {
    const void *rets[1];
    ef_val v;
    memset(&v, 0, sizeof v);
    v.type = type_char(m3_GetRetType(f, 0));
    rets[0] = v.type == 'I' ? (void *)&v.v.I : v.type == 'f' ? (void *)&v.v.f : (void *)&v.v.i;
    if (v.type != 'i' && v.type != 'I' && v.type != 'f') { snprintf(err, err_cap, "app: export '%s' returns an f64", name); return -1; }
    if ((r = m3_GetResults(f, 1, rets))) { snprintf(err, err_cap, "app: results of '%s': %s", name, r); return -1; }
    if (result) *result = v;
  }
  return 0;
}

int ef_app_call(ef_app *a, const char *name, uint32_t argc, const uint32_t *argv, int32_t *result, char *err, uint32_t err_cap) {
  ef_val v[8], out;
  uint32_t i;
  if (argc > 8) { snprintf(err, err_cap, "app: export '%s' does not take %u arguments", name, (unsigned)argc); return -1; }
  for (i = 0; i < argc; i++) { v[i].type = 'i'; v[i].v.i = argv[i]; }
  if (ef_app_callv(a, name, argc, v, &out, err, err_cap)) return -1;
  if (out.type && out.type != 'i') { snprintf(err, err_cap, "app: export '%s' does not return an i32", name); return -1; }
  if (result) *result = (int32_t)out.v.i;
  return 0;
}

uint8_t *ef_app_guest(ef_app *a, uint32_t ptr, uint32_t len) { return guest(a->rt, ptr, len); }

uint32_t ef_app_memory(ef_app *a) {
  uint32_t size = 0;
  m3_GetMemory(a->rt, &size, 0);
  return size;
}
uint32_t ef_app_memory_cap(ef_app *a) { return a->cap; }

/* wasm3 allocates min(pages x 64 KiB, memoryLimit) for linear memory: where the plan's cap is above
 * the board's bytes (or there is none: an image packed --ignore-fit), an allocation past them fails
 * there, so memory.grow fails here past the whole pages that fit, and model_init reports it. */
void ef_app_limit_memory(ef_app *a, uint32_t bytes) {
  uint32_t pages;
  if (!bytes || (a->cap && a->cap <= bytes)) return;
  pages = bytes / a->rt->memory.pageSize;
  if (pages < a->rt->memory.maxPages) a->rt->memory.maxPages = pages;
}

const char EF_APP_ENGINE[] = "wasm3";
