/* The bare-metal ESP32-C3's storage (core/storage.h) on its SPI flash, through the ROM's own flash
 * functions (esp_rom_spiflash_read/write/erase_sector): one region at EF_C3_REGION (layout.gen.h)
 * laid out as core/slots.h expects, [slot record: 2 sectors][slot A][slot B], the same bytes the ESP-IDF
 * firmware keeps in its efstate, model_a and model_b partitions. The map is the flash cache's: the
 * whole flash is mapped once on the data bus at 0x3C000000 (64 KiB MMU pages), and the cache is
 * invalidated after every erase or write, so a mapping always reads what flash holds now. */
#ifndef EF_C3_FLASH_STORAGE_H
#define EF_C3_FLASH_STORAGE_H
#include "core/storage.h"

/* Called by start.S before any code in flash runs: the ROM's flash parameters, and the whole flash mapped
 * 1:1 on both buses (flash byte X at 0x3C000000 + X and 0x42000000 + X). Returns 0, or the ROM's error. */
int ef_c3_flash_map(void);
/* Returns NULL, or one line saying why the flash cannot be used. */
const char *ef_c3_flash_open(ef_storage *st);
#endif
