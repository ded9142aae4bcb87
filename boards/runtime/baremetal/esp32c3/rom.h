/* The ESP32-C3 ROM functions the port calls (addresses in rom.ld), with the signatures ESP-IDF's
 * esp_rom headers give them. The spiflash ones return 0 on success; their addresses are flash offsets,
 * their buffers and lengths 4-byte aligned. */
#ifndef EF_C3_ROM_H
#define EF_C3_ROM_H
#include <stdint.h>

int esp_rom_spiflash_erase_sector(uint32_t sector);
int esp_rom_spiflash_write(uint32_t dest, const uint32_t *src, int32_t len);
int esp_rom_spiflash_read(uint32_t src, uint32_t *dest, int32_t len);
int esp_rom_spiflash_config_param(uint32_t device_id, uint32_t chip_size, uint32_t block_size, uint32_t sector_size, uint32_t page_size, uint32_t status_mask);
int esp_rom_spiflash_unlock(void);
/* The flash cache (the C3's one ICache serves the instruction and the data bus) and its MMU: pages of
 * 64 KiB of flash mapped to the data bus at 0x3C000000 + 64 KiB * n. ext_ram 0: flash. */
void Cache_Invalidate_ICache_All(void);
uint32_t Cache_Disable_ICache(void);
void Cache_Enable_ICache(uint32_t autoload);
int Cache_Dbus_MMU_Set(uint32_t ext_ram, uint32_t vaddr, uint32_t paddr, uint32_t psize_kib, uint32_t num, uint32_t fixed);
void software_reset(void);
void ets_delay_us(uint32_t us);
#endif
