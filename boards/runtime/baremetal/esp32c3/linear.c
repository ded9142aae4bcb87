/* The app's linear memory at the top of the heap, and the heap under it. Linear memory is the one block
 * that grows (memory.grow: 97 KiB for the 260K demo model, in steps): as an ordinary malloc'd block each
 * growth needs the old and the new block at once, and what wasm3 allocated meanwhile splits the heap, so
 * the planner's "largest block" is not there when model_init asks for it. Here it lies at the heap's
 * end, [__heap_end - size, __heap_end), and moves down as it grows (memmove: its bytes keep their
 * offsets; m3_Realloc's contract: bytes past the old size are zero); picolibc's malloc gets the rest
 * through sbrk, which stops below it. wasm3's m3_env.c is compiled with -Dm3_Realloc_Impl=ef_linear_realloc
 * (only the linear memory is reallocated there) and aot_rt.c with -DEF_AOT_LINEAR_REALLOC=ef_linear_realloc,
 * as the ESP-IDF port does for PSRAM; both release it with free(), wrapped (-Wl,--wrap=free) to land here. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern char __heap_start[], __heap_end[];
static char *brk_at = __heap_start;     /* picolibc's malloc has [__heap_start, brk_at) */
static char *linear;                    /* the block's first byte, or NULL */

void *ef_linear_realloc(void *ptr, size_t new_size, size_t old_size);
void *sbrk(ptrdiff_t incr);
void __real_free(void *p);
void __wrap_free(void *p);
/* What neither has yet: the room between malloc's end and linear memory's start. */
size_t ef_c3_heap_gap(void);

size_t ef_c3_heap_gap(void) { return (size_t)((linear ? linear : __heap_end) - brk_at); }

void *sbrk(ptrdiff_t incr) {
  char *limit = linear ? linear : __heap_end, *old = brk_at;
  if (incr > 0 ? incr > limit - brk_at : -incr > brk_at - __heap_start) return (void *)-1;
  brk_at += incr;
  return old;
}

void *ef_linear_realloc(void *ptr, size_t new_size, size_t old_size) {
  size_t room = (new_size + 15u) & ~(size_t)15u;
  char *p;
  if (ptr && ptr != linear) return 0;   /* one block, this one */
  if (!ptr) old_size = 0;
  if (room > (size_t)(__heap_end - brk_at) || (size_t)(__heap_end - room) < (size_t)brk_at) return 0;
  p = __heap_end - room;
  if (ptr && p != (char *)ptr) memmove(p, ptr, old_size < new_size ? old_size : new_size);
  if (new_size > old_size) memset(p + old_size, 0, new_size - old_size);
  linear = p;
  return p;
}

void __wrap_free(void *p) {
  if (p && p == linear) linear = 0;
  else __real_free(p);
}
