/* Force-included (-include) into llama2.c's run.c when `edge-flash bench --isa` builds it for
 * bare-metal RV32IMC (tools/bench/isa/harness.c is the rest of the program). Nothing of run.c is in
 * this project: the user brings it (--runc-src).
 * - The system headers first, so that the renames below touch only run.c's own text.
 * - main -> runc_main (the harness's entry calls it with the blob's argv);
 * - files -> the harness's blob (fopen/fread/fseek/ftell/fclose/open/close; mmap in sys/mman.h);
 * - fflush -> ef_isa_fflush: run.c calls fflush(stdout) once per decoded token, and that is where the
 *   harness takes its instruction count;
 * - run.c's ms clock and time(NULL) -> the instruction counter (1 instruction = 1 ns);
 * - the stop at BOS made conditional and off (host/bench/peers.ts patches the source), so every row
 *   decodes the same positions. */
#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#define RUNC_STOP_AT_BOS 0
FILE *ef_isa_fopen(const char *path, const char *mode);
size_t ef_isa_fread(void *buf, size_t size, size_t n, FILE *f);
int ef_isa_fseek(FILE *f, long off, int whence);
long ef_isa_ftell(FILE *f);
int ef_isa_fclose(FILE *f);
int ef_isa_open(const char *path, int flags);
int ef_isa_close(int fd);
int ef_isa_fflush(FILE *f);
long ef_isa_time_ms(void);
#define main runc_main
#define fopen ef_isa_fopen
#define fread ef_isa_fread
#define fseek ef_isa_fseek
#define ftell ef_isa_ftell
#define fclose ef_isa_fclose
#define open ef_isa_open
#define close ef_isa_close
#define fflush ef_isa_fflush
/* run.c: time_in_ms() reads clock_gettime(CLOCK_REALTIME, &time); the seed defaults to time(NULL) */
int ef_isa_clock(struct timespec *ts);
#define clock_gettime(clk, ts) ef_isa_clock(ts)
#define time(p) ((time_t)ef_isa_time_ms())
