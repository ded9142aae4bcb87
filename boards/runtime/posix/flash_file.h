/* The virtual board's flash: one file of `size` bytes that behaves like NOR flash (erase sets a whole
 * erase block to 0xFF; a write only clears bits, as on the chip, so a write without an erase shows up
 * as corrupt data). The bytes are mirrored in memory for the map (memory-mapped flash); every erase and
 * write goes to the file at once. Each erase and write is one storage operation: with stop_at_op = N
 * the process kills itself at operation N, half-way through it (a power cut), for the sweep test. */
#ifndef EF_FLASH_FILE_H
#define EF_FLASH_FILE_H
#include <stdint.h>
#include "../core/storage.h"

typedef struct {
  int fd;
  uint8_t *mem;
  uint64_t ops;               /* erases and writes so far */
  uint64_t stop_at_op;        /* 0: never */
} ef_flash_file;

/* Opens (creating, filled with 0xFF) the file; 0 or -1 with errno. */
int ef_flash_file_open(ef_flash_file *f, ef_storage *st, const char *path, uint32_t size, uint32_t erase_block);
void ef_flash_file_close(ef_flash_file *f);
#endif
