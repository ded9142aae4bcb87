/* Force-included (-include) into boards/runtime/test/app_run.c when `edge-flash bench --isa` builds
 * it for bare-metal RV32IMC on either app layer (wasm3 or AOT) with tools/bench/isa/harness.c:
 * - main -> app_run_main (the harness calls it with the blob's argv);
 * - the image read in place from the blob (memory-mapped flash on the ESP32-C3), not copied to the heap;
 * - a count after each decode step (app_run's EF_APP_RUN_STEP);
 * - its clock -> the instruction counter (1 instruction = 1 ns). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
const uint8_t *ef_isa_map(const char *path, long *n);
void ef_isa_mark(void);
long ef_isa_time_ms(void);
#define main app_run_main
#define EF_APP_RUN_LOAD(path, n) ((uint8_t *)(uintptr_t)ef_isa_map(path, n))
#define EF_APP_RUN_STEP() ef_isa_mark()
int ef_isa_clock(struct timespec *ts);
#define clock_gettime(clk, ts) ef_isa_clock(ts)
