/* edge-flash on ESP-IDF: app_main runs the device runtime (core/) on the chip. The slot record and
 * the two model slots are data partitions (partition_storage.c), the protocol runs on the console
 * line (console.c), RESET restarts the chip. The task watchdog watches this task: it is fed on every
 * pass of the loop and on every write, which during generation is every token. */
#include <string.h>
#include "board_config.h"
#include "console.h"
#include "partition_storage.h"
#include "core/protocol.h"
#include "core/slots.h"
#include "esp_heap_caps.h"
#include "esp_system.h"
#include "esp_task_wdt.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

static const uint16_t accepts[] = {EF_BOARD_ACCEPTS 0};

static void console_write(void *ctx, const uint8_t *b, uint32_t n) {
  (void)ctx;
  esp_task_wdt_reset();
  ef_console_write(b, n);
}

static uint32_t heap_free(void) { return (uint32_t)heap_caps_get_free_size(MALLOC_CAP_8BIT | MALLOC_CAP_INTERNAL); }
/* The largest block where linear memory goes: PSRAM when the board has it, else internal RAM. */
static uint32_t heap_largest(void) { return (uint32_t)heap_caps_get_largest_free_block(EF_LINEAR_CAPS); }

/* STATS' clock: the FreeRTOS tick (1-10 ms) is fine grained enough for tokens of tens of ms. */
static uint64_t now_us(void) { return (uint64_t)xTaskGetTickCount() * portTICK_PERIOD_MS * 1000u; }

/* A fault before the protocol can run: said once a second on the console, forever. */
static void halt(const char *why) {
  for (;;) {
    ef_console_write((const uint8_t *)"edge-flash: ", 12);
    ef_console_write((const uint8_t *)why, (uint32_t)strlen(why));
    ef_console_write((const uint8_t *)"\r\n", 2);
    esp_task_wdt_reset();
    vTaskDelay(pdMS_TO_TICKS(1000));
  }
}

void app_main(void) {
  static ef_partition_storage ps;
  static ef_storage st;
  static ef_slots slots;
  static ef_read_opts opts;
  static ef_proto p;
  static uint8_t buf[1024];
  const char *why;
  esp_task_wdt_add(NULL);
  if ((why = ef_console_open())) halt(why);
  if ((why = ef_partition_storage_open(&ps, &st, EF_STATE_PARTITION, EF_SLOT_A_PARTITION, EF_SLOT_B_PARTITION))) halt(why);
  if (ef_slots_open(&slots, &st)) halt("the slot-state partition cannot be read");
  memset(&opts, 0, sizeof opts);
  opts.board_id = EF_BOARD_ID;
  opts.accepts = accepts;
  opts.n_accepts = sizeof accepts / sizeof *accepts - 1;
  opts.capacity = slots.slot_size;
  /* `idf.py flash` of a project generated with --image wrote the image into slot A and erased the slot
   * record: it is recorded as an upload's commit would, and boots on trial like one */
  ef_slots_adopt(&slots, 0, &opts);
  memset(&p, 0, sizeof p);
  p.board_name = EF_BOARD_NAME;
  p.opts = &opts;
  p.slots = &slots;
  p.stack_bytes = EF_WASM_STACK_BYTES;
  p.write = console_write;
  p.heap_free = heap_free;
  p.heap_largest = heap_largest;
  p.now_us = now_us;
  ef_proto_start(&p);
  for (;;) {
    /* while a reply streams, read without waiting (a CANCEL or Ctrl-C), then one position of the model */
    uint32_t n = ef_console_read(buf, sizeof buf, ef_proto_busy(&p) ? 0 : 50);
    esp_task_wdt_reset();
    if (n) ef_proto_input(&p, buf, n);
    if (p.reset) {
      vTaskDelay(pdMS_TO_TICKS(20));   /* the RESET reply leaves the TX buffer */
      esp_restart();
    }
    if (ef_proto_busy(&p)) ef_proto_step(&p);
  }
}
