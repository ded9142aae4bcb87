/* Force-included (-include) into llama2.c's run.c when `edge-flash bench --peers` builds it, natively
 * and to wasm32-wasi. Nothing of run.c is in this project: the user brings it (--runc-src).
 *
 * - Fixed positions: run.c stops at BOS under greedy decoding; the bench rewrites its stop
 *   `if (next == 1) { break; }` to `if (next == 1 && RUNC_STOP_AT_BOS) { break; }` (host/bench/peers.ts),
 *   so every row decodes the same number of positions.
 * - WASI: wasi-libc's mmap emulation needs fd_pread, which simple WASI hosts (wasm3's own) lack:
 *   the checkpoint is read with malloc + lseek + read instead.
 */
#define RUNC_STOP_AT_BOS 0
#ifdef __wasi__
#define _WASI_EMULATED_MMAN /* for sys/mman.h's declarations; its mmap is never linked */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
static void *runc_peer_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  (void)addr; (void)prot; (void)flags;
  char *p = malloc(len);
  if (!p) return MAP_FAILED;
  if (lseek(fd, off, SEEK_SET) != off) { free(p); return MAP_FAILED; }
  for (size_t got = 0; got < len;) {
    ssize_t n = read(fd, p + got, len - got);
    if (n <= 0) { free(p); return MAP_FAILED; }
    got += (size_t)n;
  }
  return p;
}
static int runc_peer_munmap(void *p, size_t len) { (void)len; free(p); return 0; }
#define mmap runc_peer_mmap
#define munmap runc_peer_munmap
#endif
