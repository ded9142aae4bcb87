#include "chip.h"
#include "rom.h"

/* RTC_CNTL (0x60008000): the RTC watchdog and the super watchdog, each behind a write-protect key. */
#define RTC_CNTL_OPTIONS0 0x60008000u
#define RTC_CNTL_WDTCONFIG0 0x60008090u
#define RTC_CNTL_WDTWPROTECT 0x600080A8u
#define RTC_CNTL_SWD_CONF 0x600080ACu
#define RTC_CNTL_SWD_WPROTECT 0x600080B0u
#define RTC_WDT_KEY 0x50D83AA1u
#define SWD_KEY 0x8F1D312Au
/* Timer group 0 (0x6001F000) and 1 (0x60020000): their main watchdogs, same key as the RTC one. */
#define TIMG_WDTCONFIG0(base) ((base) + 0x48u)
#define TIMG_WDTWPROTECT(base) ((base) + 0x64u)
#define WDT_EN (1u << 31)
#define RTC_WDT_FLASHBOOT_EN (1u << 12)
#define TIMG_WDT_FLASHBOOT_EN (1u << 14)
#define SWD_AUTO_FEED_EN (1u << 31)
/* UART0 (0x60000000): the FIFO window and the status word (RX count bits 0-9, TX count bits 16-25). */
#define UART0_FIFO 0x60000000u
#define UART0_STATUS 0x6000001Cu
#define UART_FIFO_BYTES 128u
/* SYSTIMER (0x60023000): unit 0 counts at 16 MHz; a snapshot is asked for (bit 30) and valid (bit 29). */
#define SYSTIMER_CONF 0x60023000u            /* bit 31: register clock on; bit 30: unit 0 counts */
#define SYSTIMER_UNIT0_OP 0x60023004u
#define SYSTEM_PERIP_CLK_EN0 0x600C0010u     /* bit 29: the SYSTIMER's clock */
#define SYSTEM_PERIP_RST_EN0 0x600C0018u     /* bit 29: the SYSTIMER held in reset */
#define SYSTIMER_UNIT0_HI 0x60023040u
#define SYSTIMER_UNIT0_LO 0x60023044u

void ef_c3_watchdogs_off(void) {
  uint32_t t;
  EF_C3_REG(RTC_CNTL_WDTWPROTECT) = RTC_WDT_KEY;
  EF_C3_REG(RTC_CNTL_WDTCONFIG0) &= ~(WDT_EN | RTC_WDT_FLASHBOOT_EN);
  EF_C3_REG(RTC_CNTL_WDTWPROTECT) = 0;
  for (t = 0x6001F000u; t <= 0x60020000u; t += 0x1000u) {
    EF_C3_REG(TIMG_WDTWPROTECT(t)) = RTC_WDT_KEY;
    EF_C3_REG(TIMG_WDTCONFIG0(t)) &= ~(WDT_EN | TIMG_WDT_FLASHBOOT_EN);
    EF_C3_REG(TIMG_WDTWPROTECT(t)) = 0;
  }
  EF_C3_REG(RTC_CNTL_SWD_WPROTECT) = SWD_KEY;
  EF_C3_REG(RTC_CNTL_SWD_CONF) |= SWD_AUTO_FEED_EN;
  EF_C3_REG(RTC_CNTL_SWD_WPROTECT) = 0;
}

void ef_c3_clock_start(void) {
  EF_C3_REG(SYSTEM_PERIP_CLK_EN0) |= 1u << 29;
  EF_C3_REG(SYSTEM_PERIP_RST_EN0) &= ~(1u << 29);
  EF_C3_REG(SYSTIMER_CONF) |= (1u << 31) | (1u << 30);
}

#define RING 8192u   /* a power of two */
static uint8_t ring[RING];
static uint32_t ring_head, ring_tail;   /* free-running: head - tail bytes are waiting */

void ef_c3_uart_poll(void) {
  uint32_t n = EF_C3_REG(UART0_STATUS) & 0x3FFu;
  while (n--) {
    uint8_t b = (uint8_t)EF_C3_REG(UART0_FIFO);
    if (ring_head - ring_tail < RING) ring[ring_head++ & (RING - 1)] = b;   /* else lost: the protocol asks again */
  }
}

uint32_t ef_c3_uart_read(uint8_t *buf, uint32_t cap, uint32_t wait_ms) {
  uint64_t until = ef_c3_now_us() + (uint64_t)wait_ms * 1000u;
  uint32_t n = 0;
  for (;;) {
    ef_c3_uart_poll();
    if (ring_head != ring_tail || ef_c3_now_us() >= until) break;
  }
  while (n < cap && ring_head != ring_tail) buf[n++] = ring[ring_tail++ & (RING - 1)];
  return n;
}

void ef_c3_uart_write(const uint8_t *b, uint32_t n) {
  while (n) {
    ef_c3_uart_poll();   /* what arrives while we talk is kept */
    if (((EF_C3_REG(UART0_STATUS) >> 16) & 0x3FFu) >= UART_FIFO_BYTES - 1) continue;
    EF_C3_REG(UART0_FIFO) = *b++;
    n--;
  }
}

uint64_t ef_c3_now_us(void) {
  uint32_t hi, lo, spins = 0;
  EF_C3_REG(SYSTIMER_UNIT0_OP) = 1u << 30;
  while (!(EF_C3_REG(SYSTIMER_UNIT0_OP) & (1u << 29)) && ++spins < 1000u) {}
  hi = EF_C3_REG(SYSTIMER_UNIT0_HI) & 0xFFFFFu;
  lo = EF_C3_REG(SYSTIMER_UNIT0_LO);
  return (((uint64_t)hi << 32) | lo) / 16u;
}

void ef_c3_restart(void) {
  /* the UART's last bytes leave first (TX count to 0, bounded) */
  uint32_t spins = 0;
  while (((EF_C3_REG(UART0_STATUS) >> 16) & 0x3FFu) && ++spins < 1000000u) {}
  ets_delay_us(2000);
  software_reset();
  for (;;) {}
}
