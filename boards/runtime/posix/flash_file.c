#define _POSIX_C_SOURCE 200809L
#include "flash_file.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int put(ef_flash_file *f, uint32_t off, uint32_t n) {
  uint32_t done = 0;
  while (done < n) {
    ssize_t w = pwrite(f->fd, f->mem + off + done, n - done, (off_t)off + done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    done += (uint32_t)w;
  }
  return 0;
}

/* The sweep's power cut: the operation's first half reaches the file, then the process dies. */
static uint32_t cut(ef_flash_file *f, uint32_t n) {
  f->ops++;
  return f->stop_at_op && f->ops == f->stop_at_op ? n / 2 : n;
}
static void die(void) { raise(SIGKILL); _exit(137); }

static int ff_read(void *ctx, uint32_t off, void *dst, uint32_t n) {
  memcpy(dst, ((ef_flash_file *)ctx)->mem + off, n);
  return 0;
}

static int ff_erase(void *ctx, uint32_t off, uint32_t n) {
  ef_flash_file *f = (ef_flash_file *)ctx;
  uint32_t m = cut(f, n);
  memset(f->mem + off, 0xFF, m);
  if (put(f, off, m)) return -1;
  if (m != n) die();
  return 0;
}

static int ff_write(void *ctx, uint32_t off, const void *src, uint32_t n) {
  ef_flash_file *f = (ef_flash_file *)ctx;
  const uint8_t *s = (const uint8_t *)src;
  uint32_t m = cut(f, n), i;
  for (i = 0; i < m; i++) f->mem[off + i] &= s[i];   /* NOR: bits only go from 1 to 0 */
  if (put(f, off, m)) return -1;
  if (m != n) die();
  return 0;
}

static const uint8_t *ff_map(void *ctx, uint32_t off, uint32_t n) {
  (void)n;
  return ((ef_flash_file *)ctx)->mem + off;
}

int ef_flash_file_open(ef_flash_file *f, ef_storage *st, const char *path, uint32_t size, uint32_t erase_block) {
  struct stat sb;
  uint64_t have;
  memset(f, 0, sizeof *f);
  f->fd = open(path, O_RDWR | O_CREAT, 0644);
  if (f->fd < 0) return -1;
  if (fstat(f->fd, &sb)) return -1;
  f->mem = malloc(size);
  if (!f->mem) return -1;
  memset(f->mem, 0xFF, size);
  have = (uint64_t)sb.st_size < size ? (uint64_t)sb.st_size : size;
  {
    uint64_t done = 0;
    while (done < have) {
      ssize_t r = pread(f->fd, f->mem + done, (size_t)(have - done), (off_t)done);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return -1;
      done += (uint64_t)r;
    }
  }
  /* a new or shorter file grows to the flash size, erased */
  if ((uint64_t)sb.st_size < size && put(f, (uint32_t)have, size - (uint32_t)have)) return -1;
  st->ctx = f;
  st->size = size;
  st->erase_block = erase_block;
  st->read = ff_read;
  st->erase = ff_erase;
  st->write = ff_write;
  st->map = ff_map;
  return 0;
}

void ef_flash_file_close(ef_flash_file *f) {
  if (f->fd >= 0) close(f->fd);
  free(f->mem);
  f->fd = -1;
  f->mem = 0;
}
