/* The ESP-IDF port's storage (core/storage.h) over three data partitions, laid out as core/slots.h
 * expects one region: [slot state: 2 erase blocks][slot A][slot B]. Reads, erases and writes go
 * through esp_partition_read/erase_range/write; the map is esp_partition_mmap of a whole slot (the
 * weights are read as memory-mapped flash), made again after the slot was erased or written. */
#ifndef EF_PARTITION_STORAGE_H
#define EF_PARTITION_STORAGE_H
#include <stdint.h>
#include "esp_partition.h"
#include "core/storage.h"

#define EF_ERASE_BLOCK 4096u   /* the SPI flash sector: the unit of esp_partition_erase_range */

typedef struct {
  const esp_partition_t *part[3];        /* state, slot A, slot B */
  uint32_t start[3];                     /* where each begins in the region */
  const uint8_t *map[2];                 /* a slot's mapping, or NULL */
  esp_partition_mmap_handle_t handle[2];
  uint8_t stale[2];                      /* erased or written since it was mapped */
} ef_partition_storage;

/* Finds the three partitions by label. Returns NULL, or a one-line reason why they do not make a region
 * (missing, a state partition of other than 2 erase blocks, slots of unequal or unaligned sizes). */
const char *ef_partition_storage_open(ef_partition_storage *ps, ef_storage *st, const char *state, const char *slot_a, const char *slot_b);
#endif
