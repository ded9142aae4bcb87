/* The serial line the protocol runs on: UART0 (driver/uart.h) or the chip's USB-Serial-JTAG
 * controller (driver/usb_serial_jtag.h), chosen when the project is generated (board_config.h). */
#ifndef EF_CONSOLE_H
#define EF_CONSOLE_H
#include <stdint.h>

/* Installs the driver; NULL, or a one-line reason. */
const char *ef_console_open(void);
/* Up to cap bytes, waiting at most wait_ms for the first; returns the count (0: none came). */
uint32_t ef_console_read(uint8_t *buf, uint32_t cap, uint32_t wait_ms);
/* All n bytes (blocks while the driver's buffer is full). */
void ef_console_write(const uint8_t *b, uint32_t n);
#endif
