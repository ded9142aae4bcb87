/* The app's linear memory in PSRAM. Under wasm3, the wasm3 component compiles m3_env.c with
 * -Dm3_Realloc_Impl=ef_linear_realloc: the one m3_Realloc there is the linear memory's (ResizeMemory),
 * so only linear memory comes here; wasm3's code pages, stacks and tables stay in internal RAM. Under
 * --aot, main/aot/aot_rt.c is compiled with -DEF_AOT_LINEAR_REALLOC=ef_linear_realloc: its one block.
 * The semantics are wasm3's own m3_Realloc_Impl: bytes past the old size are zero. Freed by free(),
 * which ESP-IDF accepts for any heap_caps block. */
#include <stdint.h>
#include <string.h>
#include "esp_heap_caps.h"

void *ef_linear_realloc(void *ptr, size_t new_size, size_t old_size);

void *ef_linear_realloc(void *ptr, size_t new_size, size_t old_size) {
  void *p;
  if (new_size == old_size) return ptr;
  p = heap_caps_realloc(ptr, new_size, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
  if (p && new_size > old_size) memset((uint8_t *)p + old_size, 0, new_size - old_size);
  return p;
}
