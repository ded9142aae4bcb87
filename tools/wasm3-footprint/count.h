/* Forced into every wasm3 source (-include): its allocations go through the counting allocator. */
#include <stddef.h>
void *cnt_calloc(size_t n, size_t size);
void *cnt_realloc(void *p, size_t size);
void cnt_free(void *p);
#define calloc cnt_calloc
#define realloc cnt_realloc
#define free cnt_free
