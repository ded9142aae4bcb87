/* The booted image's app.wasm, by one of two implementations chosen at build time (EF_APP_ENGINE): in
 * wasm3 (core/app.c), parsed from the image where it lies, or translated to C ahead of time by wasm2c
 * (aot/app_aot.c), which runs only the app it was built from. Both link the one link table of host
 * imports (docs/abi.md, module `edge`) and cap linear memory at the image's plan. A trap (out of
 * bounds, unreachable, abort) comes back as an error string; the app can be called again. */
#ifndef EF_APP_H
#define EF_APP_H
#include <stdint.h>
#include "image.h"

typedef struct ef_app ef_app;
/* Where the app's edge.log lines go (a LOG frame on a board, stderr on a PC). */
typedef void (*ef_log_fn)(void *ctx, const char *text, uint32_t len);

/* Loads img's app (the image stays mapped while the app lives). stack_bytes: wasm3's value stack.
 * Returns NULL on failure with one line in err. One app at a time: the state is static. */
ef_app *ef_app_load(const ef_image *img, uint32_t stack_bytes, ef_log_fn log, void *log_ctx, char *err, uint32_t err_cap);
void ef_app_unload(ef_app *app);

/* Calls an export with 32-bit integer arguments (i32 results only; 0 results allowed). Returns 0, or -1
 * with one line in err (missing export, wrong signature, trap). */
int ef_app_call(ef_app *app, const char *name, uint32_t argc, const uint32_t *argv, int32_t *result, char *err, uint32_t err_cap);
int ef_app_has(ef_app *app, const char *name);
/* A value of an export's argument or result: type 'i' (i32), 'I' (i64), 'f' (f32); 0 for none. */
typedef struct { char type; union { uint32_t i; uint64_t I; float f; } v; } ef_val;
/* Calls an export with typed arguments (each must match the export's type); result may be NULL. */
int ef_app_callv(ef_app *app, const char *name, uint32_t argc, const ef_val *argv, ef_val *result, char *err, uint32_t err_cap);
/* Bytes [ptr, ptr + len) of linear memory, or NULL when outside it. */
uint8_t *ef_app_guest(ef_app *app, uint32_t ptr, uint32_t len);
/* Linear memory: bytes now, and the cap (0: none). */
uint32_t ef_app_memory(ef_app *app);
uint32_t ef_app_memory_cap(ef_app *app);
/* Caps linear memory at `bytes` where that is below the image's plan: the board's memory (the virtual
 * board plays a board's limit this way, so an image planned past it fails as on the board). */
void ef_app_limit_memory(ef_app *app, uint32_t bytes);

/* The implementation this build has: "wasm3" or "aot". */
extern const char EF_APP_ENGINE[];

/* The link table (name, signature), exposed for the tests and the INFO report. */
typedef struct { const char *module, *name, *sig; } ef_import;
extern const ef_import EF_IMPORTS[];
extern const uint32_t EF_IMPORT_COUNT;
#endif
