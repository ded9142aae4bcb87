/* SHA-256 (FIPS 180-4), incremental: the image digest and the upload key. */
#ifndef EF_SHA256_H
#define EF_SHA256_H
#include <stddef.h>
#include <stdint.h>
typedef struct {
  uint32_t h[8];
  uint64_t len;      /* bytes hashed so far */
  uint8_t buf[64];
  uint32_t fill;     /* bytes in buf */
} ef_sha256;
void ef_sha256_init(ef_sha256 *s);
void ef_sha256_update(ef_sha256 *s, const void *data, size_t n);
void ef_sha256_final(ef_sha256 *s, uint8_t out[32]);
void ef_sha256_once(const void *data, size_t n, uint8_t out[32]);
#endif
