/* The port's storage and slot layer on ESP-IDF's `linux` target: the generated firmware's own
 * partition_storage.c, board_config.h, partitions.csv and core/ slot code over esp_partition's flash
 * emulation (a 16 MiB file), run by test/esp-idf.test.ts through tools/esp-idf-check.ts. It checks:
 *   1. the three partitions make one region; reads, erases and writes across the slot A / slot B
 *      boundary land in both partitions, as esp_partition reads them back;
 *   2. an image written into slot A as `idf.py flash` writes it (the slot record erased) is adopted,
 *      boots on trial and is confirmed; after a "restart" (the record read again) it boots confirmed;
 *   3. the same image uploaded into slot B through the slot layer verifies and commits.
 * One line per step on stdout ("ok ..." or "FAIL ..."); the exit status is the number of failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "board_config.h"
#include "partition_storage.h"
#include "core/slots.h"

static int failures;
/* cond is evaluated once: most are steps of the slot layer */
#define CHECK(cond, ...) do { int ok_ = (cond); printf(ok_ ? "ok " : "FAIL "); printf(__VA_ARGS__); printf("\n"); if (!ok_) failures++; } while (0)

static uint8_t *read_file(const char *path, uint32_t *n) {
  FILE *f = fopen(path, "rb");
  uint8_t *b;
  long len;
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  fseek(f, 0, SEEK_SET);
  b = malloc((size_t)len);
  if (!b || fread(b, 1, (size_t)len, f) != (size_t)len) { fclose(f); free(b); return 0; }
  fclose(f);
  *n = (uint32_t)len;
  return b;
}

static const uint16_t accepts[] = {EF_BOARD_ACCEPTS 0};

void app_main(void) {
  static ef_partition_storage ps;
  static ef_storage st;
  static ef_slots slots;
  static ef_read_opts opts;
  static uint8_t pattern[3 * EF_ERASE_BLOCK], back[3 * EF_ERASE_BLOCK], tail[EF_ERASE_BLOCK], head[2 * EF_ERASE_BLOCK];
  ef_image img;
  const char *why, *path = getenv("EF_IMAGE");
  uint32_t i, n = 0, boundary, next = 0;
  uint8_t *image = path ? read_file(path, &n) : 0;
  uint8_t sha[32], got[32];
  char msg[160];
  int slot = -1;
  if (!image) { printf("FAIL EF_IMAGE: cannot read the image\n"); exit(1); }

  why = ef_partition_storage_open(&ps, &st, EF_STATE_PARTITION, EF_SLOT_A_PARTITION, EF_SLOT_B_PARTITION);
  CHECK(!why, "the partitions make one region: %s", why ? why : "state, slot A, slot B");
  if (why) exit(1);
  CHECK(st.size == 2 * EF_ERASE_BLOCK + 2 * ps.part[1]->size, "the region is %u bytes: the record and two slots of %u", (unsigned)st.size, (unsigned)ps.part[1]->size);

  /* 1. across the boundary: the last sector of slot A and the first two of slot B in one erase and one write */
  boundary = ps.start[2];
  for (i = 0; i < sizeof pattern; i++) pattern[i] = (uint8_t)(i * 7 + 3);
  CHECK(ef_storage_erase(&st, boundary - EF_ERASE_BLOCK, sizeof pattern) == 0, "one erase across the slot boundary");
  CHECK(ef_storage_write(&st, boundary - EF_ERASE_BLOCK, pattern, sizeof pattern) == 0, "one write across the slot boundary");
  CHECK(ef_storage_read(&st, boundary - EF_ERASE_BLOCK, back, sizeof back) == 0 && memcmp(back, pattern, sizeof pattern) == 0, "one read across the slot boundary gives the bytes written");
  CHECK(esp_partition_read(ps.part[1], ps.part[1]->size - EF_ERASE_BLOCK, tail, sizeof tail) == ESP_OK && memcmp(tail, pattern, sizeof tail) == 0, "slot A's last sector holds the first part");
  CHECK(esp_partition_read(ps.part[2], 0, head, sizeof head) == ESP_OK && memcmp(head, pattern + EF_ERASE_BLOCK, sizeof head) == 0, "slot B's first sectors hold the rest");
  CHECK(ef_storage_read(&st, st.size - 8, back, 16) != 0, "a read past the region's end fails");
  CHECK(ef_storage_map(&st, boundary - 16, 32) == 0, "no mapping across the slot boundary");

  /* 2. the image as `idf.py flash` writes it: slot A, the record erased */
  CHECK(esp_partition_erase_range(ps.part[1], 0, ps.part[1]->size) == ESP_OK && esp_partition_write(ps.part[1], 0, image, n) == ESP_OK, "the image (%u bytes) written into slot A", (unsigned)n);
  CHECK(esp_partition_erase_range(ps.part[0], 0, ps.part[0]->size) == ESP_OK, "the slot record erased");
  memset(&opts, 0, sizeof opts);
  opts.board_id = EF_BOARD_ID;
  opts.accepts = accepts;
  opts.n_accepts = sizeof accepts / sizeof *accepts - 1;
  CHECK(ef_slots_open(&slots, &st) == EF_SLOTS_OK, "the slot record opens");
  opts.capacity = slots.slot_size;
  CHECK(ef_slots_adopt(&slots, 0, &opts) == EF_SLOTS_OK && slots.rec.slot[0].state == EF_SLOT_PENDING, "the flashed image is adopted: pending in slot A");
  CHECK(ef_slots_boot(&slots, &opts, &slot, &img) == EF_SLOTS_OK && slot == 0 && slots.rec.trial == 1, "it boots on trial from slot A");
  CHECK(ef_slots_confirm(&slots) == EF_SLOTS_OK && slots.rec.slot[0].state == EF_SLOT_CONFIRMED, "it is confirmed");
  memset(&slots, 0, sizeof slots);
  CHECK(ef_slots_open(&slots, &st) == EF_SLOTS_OK && ef_slots_boot(&slots, &opts, &slot, &img) == EF_SLOTS_OK && slot == 0 && slots.rec.slot[0].state == EF_SLOT_CONFIRMED, "after a restart slot A boots, confirmed");

  /* 3. the same image uploaded into slot B through the slot layer, in 1000-byte writes */
  memcpy(sha, slots.rec.slot[0].sha256, 32);
  CHECK(ef_slots_upload_begin(&slots, n, sha, &next) == EF_SLOTS_OK && slots.up_slot == 1 && next == 0, "an upload begins in slot B");
  for (i = 0; i < n; i += 1000) {
    if (ef_slots_upload_write(&slots, i, image + i, n - i < 1000 ? n - i : 1000) != EF_SLOTS_OK) break;
  }
  CHECK(i >= n, "the upload's writes (%u bytes) go through", (unsigned)n);
  CHECK(ef_slots_upload_verify(&slots, &opts, got, msg, sizeof msg) == EF_SLOTS_OK && memcmp(got, sha, 32) == 0, "the upload verifies, the SHA-256 read back from slot B");
  CHECK(ef_slots_commit(&slots) == EF_SLOTS_OK && slots.rec.active == 1 && slots.rec.slot[1].state == EF_SLOT_PENDING, "it commits: slot B pending, active");
  printf("%d failed\n", failures);
  fflush(stdout);
  exit(failures);
}
