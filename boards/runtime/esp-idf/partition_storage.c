#include "partition_storage.h"
#include <string.h>

/* The partition holding region offset off, with off made relative to it; -1 past the end. */
static int locate(const ef_partition_storage *ps, uint32_t *off) {
  int i;
  for (i = 2; i >= 0; i--) {
    if (*off >= ps->start[i]) {
      if (*off - ps->start[i] >= ps->part[i]->size) return -1;
      *off -= ps->start[i];
      return i;
    }
  }
  return -1;
}

/* One operation over [off, off + n) of the region, split where it crosses a partition's end. */
typedef esp_err_t (*part_op)(const esp_partition_t *p, uint32_t off, void *buf, uint32_t n);

static int each(ef_partition_storage *ps, uint32_t off, uint32_t n, uint8_t *buf, part_op op, int changes) {
  while (n) {
    uint32_t at = off, len;
    int i = locate(ps, &at);
    if (i < 0) return -1;
    len = ps->part[i]->size - at < n ? ps->part[i]->size - at : n;
    if (op(ps->part[i], at, buf, len) != ESP_OK) return -1;
    if (changes && i > 0) ps->stale[i - 1] = 1;
    off += len;
    n -= len;
    if (buf) buf += len;
  }
  return 0;
}

static esp_err_t op_read(const esp_partition_t *p, uint32_t off, void *buf, uint32_t n) { return esp_partition_read(p, off, buf, n); }
static esp_err_t op_erase(const esp_partition_t *p, uint32_t off, void *buf, uint32_t n) { (void)buf; return esp_partition_erase_range(p, off, n); }
static esp_err_t op_write(const esp_partition_t *p, uint32_t off, void *buf, uint32_t n) { return esp_partition_write(p, off, buf, n); }

static int ps_read(void *ctx, uint32_t off, void *dst, uint32_t n) { return each((ef_partition_storage *)ctx, off, n, (uint8_t *)dst, op_read, 0); }
static int ps_erase(void *ctx, uint32_t off, uint32_t n) { return each((ef_partition_storage *)ctx, off, n, 0, op_erase, 1); }
static int ps_write(void *ctx, uint32_t off, const void *src, uint32_t n) { return each((ef_partition_storage *)ctx, off, n, (uint8_t *)(uintptr_t)src, op_write, 1); }

/* Only within one slot: the image lives there; the state partition is never mapped. A slot is mapped
 * whole, once, and again after it changed (a fresh mapping reads what flash holds now). */
static const uint8_t *ps_map(void *ctx, uint32_t off, uint32_t n) {
  ef_partition_storage *ps = (ef_partition_storage *)ctx;
  uint32_t at = off;
  int i = locate(ps, &at), s;
  const void *ptr = 0;
  if (i < 1 || (uint64_t)at + n > ps->part[i]->size) return 0;
  s = i - 1;
  if (ps->map[s] && ps->stale[s]) {
    esp_partition_munmap(ps->handle[s]);
    ps->map[s] = 0;
  }
  if (!ps->map[s]) {
    if (esp_partition_mmap(ps->part[i], 0, ps->part[i]->size, ESP_PARTITION_MMAP_DATA, &ptr, &ps->handle[s]) != ESP_OK) return 0;
    ps->map[s] = (const uint8_t *)ptr;
    ps->stale[s] = 0;
  }
  return ps->map[s] + at;
}

const char *ef_partition_storage_open(ef_partition_storage *ps, ef_storage *st, const char *state, const char *slot_a, const char *slot_b) {
  const char *labels[3];
  int i;
  labels[0] = state; labels[1] = slot_a; labels[2] = slot_b;
  memset(ps, 0, sizeof *ps);
  for (i = 0; i < 3; i++) {
    ps->part[i] = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, labels[i]);
    if (!ps->part[i]) return "a partition of partitions.csv is missing (flash the partition table: idf.py flash)";
  }
  if (ps->part[0]->size != 2 * EF_ERASE_BLOCK) return "the slot-state partition is not 2 flash sectors (8 KiB)";
  if (ps->part[1]->size != ps->part[2]->size || ps->part[1]->size % EF_ERASE_BLOCK || ps->part[1]->size == 0) return "the two model slots differ in size or are not whole flash sectors";
  if ((uint64_t)2 * EF_ERASE_BLOCK + 2ull * ps->part[1]->size > 0xFFFFFFFFull) return "the model slots are larger than 4 GiB";
  ps->start[0] = 0;
  ps->start[1] = 2 * EF_ERASE_BLOCK;
  ps->start[2] = 2 * EF_ERASE_BLOCK + ps->part[1]->size;
  st->ctx = ps;
  st->size = ps->start[2] + ps->part[2]->size;
  st->erase_block = EF_ERASE_BLOCK;
  st->read = ps_read;
  st->erase = ps_erase;
  st->write = ps_write;
  st->map = ps_map;
  return 0;
}
