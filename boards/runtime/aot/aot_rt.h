/* The board's side of wasm2c's runtime (aot/aot_rt.c): where a trap returns to, and linear memory's cap. */
#ifndef EF_AOT_RT_H
#define EF_AOT_RT_H
#include <setjmp.h>
#include "wasm-rt.h"

/* Where the next trap longjmps to (the value is the wasm_rt_trap_t); NULL: none (a trap aborts). */
void ef_aot_rt_catch(jmp_buf *target);
/* Linear memory's cap in bytes for memories allocated or grown from now on; 0: none. */
void ef_aot_rt_set_cap(uint32_t bytes);
/* The board's linear memory in bytes (0: none): memory.grow fails past it, as an allocation does there. */
void ef_aot_rt_set_board_max(uint32_t bytes);
#endif
