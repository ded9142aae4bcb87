/* wasm2c's runtime interface (wasm-rt.h, from the system's wabt) implemented for a board: the AOT app
 * (aot/app_aot.c) needs only this. Every load and store is bounds-checked in the translated code
 * (built with WASM_RT_MEMCHECK_SIGNAL_HANDLER=0: a board has no MMU for guard pages), so here there
 * are no signals and no mmap: linear memory is one heap block of the bytes the app may use, a trap is
 * a longjmp to the call that app_aot.c is making, and call depth is counted. Standard C only. */
#include "aot_rt.h"
#include <stdarg.h>

uint32_t wasm_rt_call_stack_depth;

static int initialized;
static jmp_buf *unwind;          /* the call in progress (ef_aot_rt_catch) */
static uint32_t memory_cap;      /* bytes; 0: no cap */
static uint32_t board_max;       /* bytes the board has for it; 0: as much as the plan asks */

/* Linear memory's one block: the C heap's, or a board's allocator where the build names one (the
 * ESP-IDF port with PSRAM: -DEF_AOT_LINEAR_REALLOC=ef_linear_realloc, esp-idf/linear_psram.c, which
 * has wasm3's m3_Realloc semantics: bytes past the old size are zero, and free() releases it). */
#ifdef EF_AOT_LINEAR_REALLOC
void *EF_AOT_LINEAR_REALLOC(void *ptr, size_t new_size, size_t old_size);
#else
static void *linear_realloc(void *ptr, size_t new_size, size_t old_size) {
  uint8_t *p = (uint8_t *)realloc(ptr, new_size);
  if (p && new_size > old_size) memset(p + old_size, 0, new_size - old_size);
  return p;
}
#define EF_AOT_LINEAR_REALLOC linear_realloc
#endif

void wasm_rt_init(void) { initialized = 1; }
bool wasm_rt_is_initialized(void) { return initialized != 0; }
void wasm_rt_free(void) { initialized = 0; }

void ef_aot_rt_catch(jmp_buf *target) { unwind = target; }
void ef_aot_rt_set_cap(uint32_t bytes) { memory_cap = bytes; board_max = 0; }
void ef_aot_rt_set_board_max(uint32_t bytes) { board_max = bytes; }

WASM_RT_NO_RETURN void wasm_rt_trap(wasm_rt_trap_t code) {
  /* app_aot.c sets the target before every entry into the app; without one there is nothing to return to */
  if (!unwind) abort();
  longjmp(*unwind, (int)code);
}

const char *wasm_rt_strerror(wasm_rt_trap_t trap) {
  switch (trap) {
    case WASM_RT_TRAP_NONE: return "no error";
    case WASM_RT_TRAP_OOB: return "out of bounds memory access";
    case WASM_RT_TRAP_INT_OVERFLOW: return "integer overflow";
    case WASM_RT_TRAP_DIV_BY_ZERO: return "integer divide by zero";
    case WASM_RT_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
    case WASM_RT_TRAP_UNREACHABLE: return "unreachable executed";
    case WASM_RT_TRAP_CALL_INDIRECT: return "indirect call signature mismatch";
#if !WASM_RT_MERGED_OOB_AND_EXHAUSTION_TRAPS
    case WASM_RT_TRAP_EXHAUSTION: return "call stack exhausted";
#endif
    default: return "trap";
  }
}

/* Function types, for call_indirect's check: equal signatures get equal ids (1-based). A fixed table:
 * the app has a few dozen types at most; past that every type gets a fresh id (a mismatch traps). */
#define MAX_TYPES 64
#define MAX_TYPE_VALUES 16
static struct { uint32_t params, results; uint8_t v[MAX_TYPE_VALUES]; } types[MAX_TYPES];
static uint32_t n_types;

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...) {
  uint8_t v[MAX_TYPE_VALUES];
  uint32_t i, n = params + results;
  va_list ap;
  va_start(ap, results);
  for (i = 0; i < n; i++) {
    int t = va_arg(ap, int);   /* wasm_rt_type_t, promoted */
    if (i < MAX_TYPE_VALUES) v[i] = (uint8_t)t;
  }
  va_end(ap);
  if (n > MAX_TYPE_VALUES) return MAX_TYPES + 1 + n_types++;
  for (i = 0; i < n_types && i < MAX_TYPES; i++) {
    if (types[i].params == params && types[i].results == results && memcmp(types[i].v, v, n) == 0) return i + 1;
  }
  if (n_types >= MAX_TYPES) return MAX_TYPES + 1 + n_types++;
  types[n_types].params = params;
  types[n_types].results = results;
  memcpy(types[n_types].v, v, n);
  return ++n_types;
}

/* Linear memory: `pages` as the app sees them (memory.size), but at most the cap in bytes, as wasm3
 * caps it (app.c: the runtime's memoryLimit): an access past the cap traps as out of bounds. */
static uint32_t capped(uint32_t pages) {
  uint64_t bytes = (uint64_t)pages * 65536u;
  if (memory_cap && bytes > memory_cap) bytes = memory_cap;
  return bytes > 0xffffffffu ? 0xffffffffu : (uint32_t)bytes;
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *m, uint32_t initial_pages, uint32_t max_pages) {
  m->pages = initial_pages;
  m->max_pages = max_pages;
  m->size = capped(initial_pages);
  m->data = (uint8_t *)EF_AOT_LINEAR_REALLOC(0, m->size ? m->size : 1, 0);
  if (!m->data) wasm_rt_trap(WASM_RT_TRAP_OOB);   /* instantiation runs under app_aot.c's catch */
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *m, uint32_t delta) {
  uint32_t old = m->pages, pages = old + delta, size;
  uint8_t *data;
  if (pages < old || pages > m->max_pages || pages > 65536u) return (uint32_t)-1;
  size = capped(pages);
  if (board_max && size > board_max) return (uint32_t)-1;
  if (size > m->size) {
    if (!(data = (uint8_t *)EF_AOT_LINEAR_REALLOC(m->data, size, m->size))) return (uint32_t)-1;
    m->data = data;
    m->size = size;
  }
  m->pages = pages;
  return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t *m) {
  free(m->data);
  m->data = 0;
  m->size = m->pages = 0;
}
