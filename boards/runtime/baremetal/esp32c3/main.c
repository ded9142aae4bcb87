/* edge-flash on a bare ESP32-C3: the device runtime (core/) with no OS. start.S leaves the ROM's flash
 * boot here (c_start): the watchdogs off, the flash mapped, the slots opened, then the protocol on
 * UART0, polled, for ever. RESET restarts the chip through the ROM. */
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "chip.h"
#include "flash_storage.h"
#include "layout.gen.h"
#include "core/protocol.h"
#include "core/slots.h"

size_t ef_c3_heap_gap(void);   /* linear.c */

static void console_write(void *ctx, const uint8_t *b, uint32_t n) {
  (void)ctx;
  ef_c3_uart_write(b, n);
}

/* picolibc's heap: what its free list holds plus what sbrk has not handed out yet (linear memory, at the
 * heap's top, is not free). */
static uint32_t heap_free(void) {
  struct mallinfo mi = mallinfo();
  return (uint32_t)mi.fordblks + (uint32_t)ef_c3_heap_gap();
}

/* The largest block malloc gives now, found by asking it (a block is freed as soon as it is had). */
static uint32_t heap_largest(void) {
  uint32_t lo = 0, hi = heap_free();
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo + 1) / 2;
    void *p = malloc(mid);
    if (p) { free(p); lo = mid; } else hi = mid - 1;
  }
  return lo;
}

static uint64_t now_us(void) { return ef_c3_now_us(); }

/* A fault before the protocol can run: said once a second on the console, for ever. */
static void halt(const char *why) __attribute__((noreturn));
static void halt(const char *why) {
  for (;;) {
    uint64_t t;
    ef_c3_uart_write((const uint8_t *)"edge-flash: ", 12);
    ef_c3_uart_write((const uint8_t *)why, (uint32_t)strlen(why));
    ef_c3_uart_write((const uint8_t *)"\r\n", 2);
    for (t = ef_c3_now_us() + 1000000u; ef_c3_now_us() < t;) {}
  }
}

/* What picolibc leaves to the system: exit, abort and a failed assert (the AOT runtime's) stop here, said
 * on the console (picolibc's own would want stderr, getpid and kill). */
void _exit(int code) {
  (void)code;
  halt("stopped (exit)");
}

void abort(void) { halt("stopped (abort)"); }

void __assert_func(const char *file, int line, const char *func, const char *expr);
void __assert_func(const char *file, int line, const char *func, const char *expr) {
  (void)file; (void)line; (void)func; (void)expr;
  halt("stopped (assertion failed)");
}

static const uint16_t accepts[] = {0};

void c_start(void);
void c_start(void) {
  static ef_storage st;
  static ef_slots slots;
  static ef_read_opts opts;
  static ef_proto p;
  static uint8_t buf[512];
  extern char __tls_base[];
  extern void _init_tls(void *), _set_tls(void *);
  const char *why;
  _init_tls(__tls_base);
  _set_tls(__tls_base);
  ef_c3_watchdogs_off();
  ef_c3_clock_start();
  if ((why = ef_c3_flash_open(&st))) halt(why);
  if (ef_slots_open(&slots, &st)) halt("the slot record cannot be read");
  memset(&opts, 0, sizeof opts);
  opts.board_id = EF_BOARD_ID;
  opts.accepts = accepts;
  opts.n_accepts = 0;
  opts.capacity = slots.slot_size;
  /* `flash --rom` wrote the image into slot A and erased the slot record: recorded as an upload's commit
   * would be, and booted on trial like one */
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
    uint32_t n = ef_c3_uart_read(buf, sizeof buf, ef_proto_busy(&p) ? 0 : 50);
    if (n) ef_proto_input(&p, buf, n);
    if (p.reset) ef_c3_restart();
    if (ef_proto_busy(&p)) ef_proto_step(&p);
  }
}
