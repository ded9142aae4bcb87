#include "flash_storage.h"
#include <string.h>
#include "chip.h"
#include "layout.gen.h"
#include "rom.h"

#define SECTOR 4096u
#define MMU_PAGE 0x10000u
#define DROM_BASE 0x3C000000u
#define EXTMEM_ICACHE_CTRL1 0x600C4004u   /* bits 0 and 1: the instruction and the data bus shut off the cache */
#define SHUT_IBUS (1u << 0)
#define SHUT_DBUS (1u << 1)

/* The ROM's spiflash functions take word-aligned flash addresses, buffers and lengths: everything goes
 * through this word buffer, a piece at a time. */
static uint32_t bounce[256];

EF_IRAM static int flash_read(uint32_t addr, uint8_t *dst, uint32_t n) {
  while (n) {
    uint32_t lead = addr & 3u, take = n < sizeof bounce - lead ? n : (uint32_t)sizeof bounce - lead;
    uint32_t words = (lead + take + 3u) & ~3u;
    if (esp_rom_spiflash_read(addr - lead, bounce, (int32_t)words)) return -1;
    memcpy(dst, (uint8_t *)bounce + lead, take);
    ef_c3_uart_poll();
    addr += take; dst += take; n -= take;
  }
  return 0;
}

/* NOR flash only clears bits: the bytes around the range in its first and last word are written as
 * 0xFF, which leaves them as they are. */
EF_IRAM static int flash_write(uint32_t addr, const uint8_t *src, uint32_t n) {
  while (n) {
    uint32_t lead = addr & 3u, take = n < sizeof bounce - lead ? n : (uint32_t)sizeof bounce - lead;
    uint32_t words = (lead + take + 3u) & ~3u;
    memset(bounce, 0xFF, words);
    memcpy((uint8_t *)bounce + lead, src, take);
    if (esp_rom_spiflash_write(addr - lead, bounce, (int32_t)words)) return -1;
    ef_c3_uart_poll();
    addr += take; src += take; n -= take;
  }
  return 0;
}

static int st_read(void *ctx, uint32_t off, void *dst, uint32_t n) {
  (void)ctx;
  return flash_read(EF_C3_REGION + off, (uint8_t *)dst, n);
}

EF_IRAM static int st_erase(void *ctx, uint32_t off, uint32_t n) {
  uint32_t s;
  (void)ctx;
  for (s = (EF_C3_REGION + off) / SECTOR; n; s++, n -= SECTOR) {
    if (esp_rom_spiflash_erase_sector(s)) return -1;
    ef_c3_uart_poll();
  }
  Cache_Invalidate_ICache_All();
  return 0;
}

EF_IRAM static int st_write(void *ctx, uint32_t off, const void *src, uint32_t n) {
  int r;
  (void)ctx;
  r = flash_write(EF_C3_REGION + off, (const uint8_t *)src, n);
  Cache_Invalidate_ICache_All();
  return r;
}

static const uint8_t *st_map(void *ctx, uint32_t off, uint32_t n) {
  (void)ctx; (void)n;   /* the storage wrapper checked the range: the whole region is mapped */
  return (const uint8_t *)(uintptr_t)(DROM_BASE + EF_C3_REGION + off);
}

static int map_result = -1;

EF_IRAM int ef_c3_flash_map(void) {
  uint32_t autoload;
  /* the ROM's idea of the chip (its flash boot read only the image header's size field) */
  if (esp_rom_spiflash_config_param(0, EF_C3_FLASH_SIZE, 0x10000, SECTOR, 256, 0xFFFF)) return map_result = 100;
  autoload = Cache_Disable_ICache();
  map_result = Cache_Dbus_MMU_Set(0, DROM_BASE, 0, 64, EF_C3_FLASH_SIZE / MMU_PAGE, 0);
  EF_C3_REG(EXTMEM_ICACHE_CTRL1) &= ~(SHUT_IBUS | SHUT_DBUS);
  Cache_Invalidate_ICache_All();
  Cache_Enable_ICache(autoload);
  return map_result;
}

const char *ef_c3_flash_open(ef_storage *st) {
  if (map_result == 100) return "the ROM refused the flash parameters";
  if (map_result) return "the flash cache's MMU refused the mapping";
  if (esp_rom_spiflash_unlock()) return "the flash's write protection cannot be cleared";
  memset(st, 0, sizeof *st);
  st->size = 2 * SECTOR + 2 * EF_C3_SLOT_BYTES;
  st->erase_block = SECTOR;
  st->read = st_read;
  st->erase = st_erase;
  st->write = st_write;
  st->map = st_map;
  return 0;
}
