/* CRC-32 (IEEE, zlib's: reflected 0xEDB88320, init and final XOR 0xFFFFFFFF), as the image format and
 * the frames use it. Incremental: crc = ef_crc32(0, a, n); crc = ef_crc32(crc, b, m). */
#ifndef EF_CRC32_H
#define EF_CRC32_H
#include <stddef.h>
#include <stdint.h>
uint32_t ef_crc32(uint32_t crc, const void *data, size_t n);
#endif
