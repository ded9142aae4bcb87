/* The ESP32-C3 with no OS: what start.S leaves to C (the watchdogs the ROM armed, the clock), UART0 as the
 * console by polling its registers, the system timer as the clock, and a restart through the ROM. Every
 * register address and field is from the ESP32-C3 Technical Reference Manual (ESP-IDF's soc/esp32c3
 * register headers name them the same). */
#ifndef EF_C3_CHIP_H
#define EF_C3_CHIP_H
#include <stdint.h>

#define EF_C3_REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
/* Code that runs from RAM (esp32c3.ld's .iram.text): what runs before the flash is mapped, and what
 * calls the ROM's flash functions (the flash cannot be read through the cache while it erases or writes). */
#define EF_IRAM __attribute__((section(".iram.text"), noinline))

/* The CPU clock is left as the ROM's flash boot sets it: raising it to 160 MHz needs the BBPLL set up
 * through the analog I2C bus (what ESP-IDF's rtc_clk does), which this port does not do yet; it has run
 * only in Espressif's QEMU, whose speed no clock setting changes. On a chip it runs, slower than it could.
 * The emulator ignores the watchdogs too: a build that leaves them on still runs after 40 s there.
 *
 * The watchdogs a flash boot leaves running: the RTC watchdog and timer group 0's (both armed by the
 * ROM in flash-boot mode, resetting the chip a second or so after the jump) are disabled; the super
 * watchdog is set to feed itself. */
void ef_c3_watchdogs_off(void);
/* The console, UART0 at the ROM's 115200 baud, 8N1 (set by the ROM on its flash boot). Received bytes
 * go from the 128-byte hardware FIFO into a RAM ring (8 KiB: two whole frames) on every poll: the
 * runtime polls between its steps and while it writes. */
void ef_c3_uart_poll(void);
uint32_t ef_c3_uart_read(uint8_t *buf, uint32_t cap, uint32_t wait_ms);
void ef_c3_uart_write(const uint8_t *b, uint32_t n);
/* The SYSTIMER's clock and unit 0 on (the ROM leaves the peripheral gated). */
void ef_c3_clock_start(void);
/* Microseconds since boot, from SYSTIMER unit 0 (16 MHz whatever the CPU clock). */
uint64_t ef_c3_now_us(void);
/* A whole-chip software reset: the ROM boots again (from flash). */
void ef_c3_restart(void) __attribute__((noreturn));
#endif
