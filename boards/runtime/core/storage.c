#include "storage.h"

static int in_range(const ef_storage *s, uint32_t off, uint32_t n) {
  return (uint64_t)off + n <= s->size;
}

int ef_storage_read(const ef_storage *s, uint32_t off, void *dst, uint32_t n) {
  if (!in_range(s, off, n)) return -1;
  return n == 0 ? 0 : s->read(s->ctx, off, dst, n) ? -2 : 0;
}

int ef_storage_erase(const ef_storage *s, uint32_t off, uint32_t n) {
  if (!in_range(s, off, n) || off % s->erase_block || n % s->erase_block) return -1;
  return n == 0 ? 0 : s->erase(s->ctx, off, n) ? -2 : 0;
}

int ef_storage_write(const ef_storage *s, uint32_t off, const void *src, uint32_t n) {
  if (!in_range(s, off, n)) return -1;
  return n == 0 ? 0 : s->write(s->ctx, off, src, n) ? -2 : 0;
}

const uint8_t *ef_storage_map(const ef_storage *s, uint32_t off, uint32_t n) {
  if (!in_range(s, off, n) || !s->map) return 0;
  return s->map(s->ctx, off, n);
}
