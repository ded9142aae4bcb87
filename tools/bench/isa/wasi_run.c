/* wasi_run: a wasm32-wasi command (llama2.c's run.c built by `bench --peers`'s wasm build) under wasm3
 * on bare-metal RV32IMC, for `edge-flash bench --isa` (the runc-wasm3 row). The WASI functions are the
 * ones host/bench/wasi.ts gives the same program under the wasm3 addon, with the same meaning: argv,
 * clocks (the instruction counter), stdout/stderr to the UART, read-only files of the harness's blob
 * under one preopened directory (fd 3, "/"); anything else ENOSYS. A count is taken at each clock
 * read: run.c reads its clock after the first position and after the last, so the second count is
 * the instructions of positions 1..n-1, the span its "achieved tok/s" divides (a write per token would
 * miss the tokens whose text is empty: wasi-libc's fflush writes nothing then).
 *   wasi_run WASM [ARGS...]   runs WASM's _start with argv = ARGS (ARGS[0] is the program's name) */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "wasm3.h"
#include "m3_env.h"

const uint8_t *ef_isa_map(const char *path, long *n);
void ef_isa_mark(void);
int ef_isa_open(const char *path, int flags);
int ef_isa_close(int fd);
uint64_t ef_isa_instructions(void);
int ef_isa_read_at(int fd, uint32_t pos, void *buf, uint32_t len, uint32_t *size);

enum { E_SUCCESS = 0, E_ACCES = 2, E_BADF = 8, E_INVAL = 28, E_NOENT = 44, E_NOSYS = 52, E_NOTCAPABLE = 76 };
#define PREOPEN 3
static int w_argc;
static char **w_argv;
static int32_t exit_code;
static uint32_t pos_of[16];           /* file positions, by guest fd */
/* guest fds: 0-2 the console, 3 the preopened directory, 4.. the harness's fds (3..) plus one */
#define HOST(fd) ((int)(fd) - 1)

#define MEM(p, n) do { if ((uint64_t)(p) + (n) > m3_GetMemorySize(runtime)) m3ApiTrap(m3Err_trapOutOfBoundsMemoryAccess); } while (0)
#define U32(p) (*(uint32_t *)((uint8_t *)_mem + (p)))
#define U64(p) (*(uint64_t *)((uint8_t *)_mem + (p)))

static m3ApiRawFunction(w_args_sizes_get) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, argc); m3ApiGetArg(uint32_t, size);
  uint32_t n = 0; int i;
  for (i = 0; i < w_argc; i++) n += (uint32_t)strlen(w_argv[i]) + 1;
  MEM(argc, 4); MEM(size, 4);
  U32(argc) = (uint32_t)w_argc; U32(size) = n;
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_args_get) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, argv); m3ApiGetArg(uint32_t, buf);
  int i;
  for (i = 0; i < w_argc; i++) {
    uint32_t n = (uint32_t)strlen(w_argv[i]) + 1;
    MEM(argv + 4 * i, 4); MEM(buf, n);
    U32(argv + 4 * i) = buf;
    memcpy((uint8_t *)_mem + buf, w_argv[i], n);
    buf += n;
  }
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_environ_sizes_get) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, count); m3ApiGetArg(uint32_t, size);
  MEM(count, 4); MEM(size, 4);
  U32(count) = 0; U32(size) = 0;
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_environ_get) { m3ApiReturnType(uint32_t); m3ApiReturn(E_SUCCESS); }
static m3ApiRawFunction(w_clock_time_get) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, id); m3ApiGetArg(uint64_t, precision); m3ApiGetArg(uint32_t, at);
  (void)precision;
  if (id > 1) m3ApiReturn(E_INVAL);
  MEM(at, 8);
  ef_isa_mark();
  U64(at) = (uint64_t)ef_isa_instructions(); /* one instruction = one nanosecond */
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_fd_write) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, fd); m3ApiGetArg(uint32_t, iov); m3ApiGetArg(uint32_t, n); m3ApiGetArg(uint32_t, written);
  uint32_t i, total = 0;
  if (fd != 1 && fd != 2) m3ApiReturn(E_BADF);
  MEM(iov, 8 * n); MEM(written, 4);
  for (i = 0; i < n; i++) {
    uint32_t p = U32(iov + 8 * i), len = U32(iov + 8 * i + 4);
    MEM(p, len);
    fwrite((uint8_t *)_mem + p, 1, len, stdout);
    total += len;
  }
  U32(written) = total;
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_fd_read) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, fd); m3ApiGetArg(uint32_t, iov); m3ApiGetArg(uint32_t, n); m3ApiGetArg(uint32_t, nread);
  uint32_t i, total = 0, got, size;
  MEM(iov, 8 * n); MEM(nread, 4);
  if (fd == 0) { U32(nread) = 0; m3ApiReturn(E_SUCCESS); }
  if (fd <= PREOPEN || fd >= 16) m3ApiReturn(E_BADF);
  for (i = 0; i < n; i++) {
    uint32_t p = U32(iov + 8 * i), len = U32(iov + 8 * i + 4);
    MEM(p, len);
    if (ef_isa_read_at(HOST(fd), pos_of[fd], (uint8_t *)_mem + p, len, &size) < 0) m3ApiReturn(E_BADF);
    got = size - pos_of[fd] < len ? size - pos_of[fd] : len;
    pos_of[fd] += got; total += got;
    if (got < len) break;
  }
  U32(nread) = total;
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_fd_seek) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, fd); m3ApiGetArg(int64_t, off); m3ApiGetArg(uint32_t, whence); m3ApiGetArg(uint32_t, at);
  uint32_t size; int64_t base, to;
  if (fd <= PREOPEN || fd >= 16 || ef_isa_read_at(HOST(fd), 0, 0, 0, &size) < 0) m3ApiReturn(fd <= PREOPEN ? E_NOTCAPABLE : E_BADF);
  base = whence == 0 ? 0 : whence == 1 ? (int64_t)pos_of[fd] : whence == 2 ? (int64_t)size : -1;
  to = base + off;
  if (base < 0 || to < 0) m3ApiReturn(E_INVAL);
  MEM(at, 8);
  pos_of[fd] = (uint32_t)to;
  U64(at) = (uint64_t)to;
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_fd_close) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, fd);
  m3ApiReturn(fd > PREOPEN && ef_isa_close(HOST(fd)) == 0 ? E_SUCCESS : E_BADF);
}
/* fdstat: u8 filetype, u16 flags, u64 rights base, u64 rights inheriting */
static m3ApiRawFunction(w_fd_fdstat_get) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, fd); m3ApiGetArg(uint32_t, at);
  uint32_t size;
  uint8_t type = fd <= 2 ? 2 : fd == PREOPEN ? 3 : (fd < 16 && ef_isa_read_at(HOST(fd), 0, 0, 0, &size) == 0) ? 4 : 0;
  if (!type) m3ApiReturn(E_BADF);
  MEM(at, 24);
  memset((uint8_t *)_mem + at, 0, 24);
  *((uint8_t *)_mem + at) = type;
  U64(at + 8) = 0x1fffffffu; U64(at + 16) = 0x1fffffffu;
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_fd_fdstat_set_flags) { m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, fd); m3ApiReturn(fd <= 2 ? E_SUCCESS : E_BADF); }
static m3ApiRawFunction(w_fd_prestat_get) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, fd); m3ApiGetArg(uint32_t, at);
  if (fd != PREOPEN) m3ApiReturn(E_BADF);
  MEM(at, 8);
  U32(at) = 0; U32(at + 4) = 1;
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_fd_prestat_dir_name) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, fd); m3ApiGetArg(uint32_t, p); m3ApiGetArg(uint32_t, len);
  if (fd != PREOPEN) m3ApiReturn(E_BADF);
  MEM(p, len);
  if (len) *((uint8_t *)_mem + p) = '/';
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_path_open) {
  m3ApiReturnType(uint32_t); m3ApiGetArg(uint32_t, dirfd); m3ApiGetArg(uint32_t, dirflags); m3ApiGetArg(uint32_t, p); m3ApiGetArg(uint32_t, len);
  m3ApiGetArg(uint32_t, oflags); m3ApiGetArg(uint64_t, rights); m3ApiGetArg(uint64_t, inherit); m3ApiGetArg(uint32_t, fdflags); m3ApiGetArg(uint32_t, at);
  char name[64];
  int fd;
  (void)dirflags; (void)inherit; (void)fdflags;
  if (dirfd != PREOPEN) m3ApiReturn(E_BADF);
  if ((oflags & (1 | 8)) || (rights & 0x40u)) m3ApiReturn(E_ACCES); /* read-only */
  if (len >= sizeof name) m3ApiReturn(E_NOENT);
  MEM(p, len); MEM(at, 4);
  memcpy(name, (uint8_t *)_mem + p, len);
  name[len] = 0;
  if ((fd = ef_isa_open(name, 0)) < 0) m3ApiReturn(E_NOENT);
  fd += 1;
  pos_of[fd] = 0;
  U32(at) = (uint32_t)fd;
  m3ApiReturn(E_SUCCESS);
}
static m3ApiRawFunction(w_proc_exit) {
  m3ApiGetArg(int32_t, code);
  exit_code = code;
  m3ApiTrap(m3Err_trapExit);
}

static const struct { const char *name, *sig; M3RawCall f; } WASI[] = {
  {"args_sizes_get", "i(ii)", w_args_sizes_get}, {"args_get", "i(ii)", w_args_get},
  {"environ_sizes_get", "i(ii)", w_environ_sizes_get}, {"environ_get", "i(ii)", w_environ_get},
  {"clock_time_get", "i(iIi)", w_clock_time_get}, {"fd_write", "i(iiii)", w_fd_write}, {"fd_read", "i(iiii)", w_fd_read},
  {"fd_seek", "i(iIii)", w_fd_seek}, {"fd_close", "i(i)", w_fd_close}, {"fd_fdstat_get", "i(ii)", w_fd_fdstat_get},
  {"fd_fdstat_set_flags", "i(ii)", w_fd_fdstat_set_flags}, {"fd_prestat_get", "i(ii)", w_fd_prestat_get},
  {"fd_prestat_dir_name", "i(iii)", w_fd_prestat_dir_name}, {"path_open", "i(iiiiiIIii)", w_path_open}, {"proc_exit", "v(i)", w_proc_exit},
};

int wasi_run_main(int argc, char **argv) {
  IM3Environment env;
  IM3Runtime rt;
  IM3Module mod;
  IM3Function start;
  M3Result r;
  const uint8_t *wasm;
  long n;
  unsigned i;
  if (argc < 3) { fprintf(stderr, "usage: wasi_run WASM ARGS...\n"); return 2; }
  if (!(wasm = ef_isa_map(argv[1], &n))) { fprintf(stderr, "wasi_run: no %s\n", argv[1]); return 2; }
  w_argc = argc - 2;
  w_argv = argv + 2;
  env = m3_NewEnvironment();
  if (!env || !(rt = m3_NewRuntime(env, 1 << 20, NULL))) { fprintf(stderr, "wasi_run: no memory for wasm3\n"); return 2; }
  if ((r = m3_ParseModule(env, &mod, wasm, (uint32_t)n)) || (r = m3_LoadModule(rt, mod))) { fprintf(stderr, "wasi_run: %s\n", r); return 2; }
  for (i = 0; i < sizeof WASI / sizeof *WASI; i++) {
    r = m3_LinkRawFunction(mod, "wasi_snapshot_preview1", WASI[i].name, WASI[i].sig, WASI[i].f);
    if (r && r != m3Err_functionLookupFailed) { fprintf(stderr, "wasi_run: link %s: %s\n", WASI[i].name, r); return 2; }
  }
  if ((r = m3_FindFunction(&start, rt, "_start"))) { fprintf(stderr, "wasi_run: _start: %s\n", r); return 2; }
  r = m3_CallV(start);
  if (r && r != m3Err_trapExit) { fprintf(stderr, "wasi_run: %s\n", r); return 2; }
  fflush(stdout);
  return r == m3Err_trapExit ? exit_code : 0;
}
