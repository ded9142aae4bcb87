/* The storage interface each port implements: a flash-like region of `size` bytes erased in blocks of
 * `erase_block` bytes (to 0xFF); a write only clears bits, so it must land on erased bytes. The
 * ef_storage_* wrappers check every range (64-bit sums, erase alignment) before calling the port. */
#ifndef EF_STORAGE_H
#define EF_STORAGE_H
#include <stdint.h>

typedef struct {
  void *ctx;
  uint32_t size;
  uint32_t erase_block;       /* a power of two */
  int (*read)(void *ctx, uint32_t off, void *dst, uint32_t n);
  int (*erase)(void *ctx, uint32_t off, uint32_t n);
  int (*write)(void *ctx, uint32_t off, const void *src, uint32_t n);
  /* A read-only view of [off, off + n) (memory-mapped flash), or NULL where the port has none. */
  const uint8_t *(*map)(void *ctx, uint32_t off, uint32_t n);
} ef_storage;

/* 0 on success, -1 for a range outside the region or misaligned, -2 when the port fails. */
int ef_storage_read(const ef_storage *s, uint32_t off, void *dst, uint32_t n);
int ef_storage_erase(const ef_storage *s, uint32_t off, uint32_t n);
int ef_storage_write(const ef_storage *s, uint32_t off, const void *src, uint32_t n);
const uint8_t *ef_storage_map(const ef_storage *s, uint32_t off, uint32_t n);
#endif
