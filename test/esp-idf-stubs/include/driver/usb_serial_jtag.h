/* Stand-in (see ../esp_err.h): the USB-Serial-JTAG line is stdin and stdout. */
#ifndef STUB_DRIVER_USB_SERIAL_JTAG_H
#define STUB_DRIVER_USB_SERIAL_JTAG_H
#include <stddef.h>
#include <stdint.h>
#include "../esp_err.h"
#include "../freertos/FreeRTOS.h"
/* as ESP-IDF master's (after v6.0.2): intr_priority, which that driver refuses unless it is 0
 * (a config left uninitialised gets garbage there), so the port starts from the default macro */
typedef struct {
  uint32_t tx_buffer_size;
  uint32_t rx_buffer_size;
  int intr_priority;
} usb_serial_jtag_driver_config_t;
#define USB_SERIAL_JTAG_DRIVER_CONFIG_DEFAULT() (usb_serial_jtag_driver_config_t){ .tx_buffer_size = 256, .rx_buffer_size = 256, .intr_priority = 0 }
esp_err_t usb_serial_jtag_driver_install(usb_serial_jtag_driver_config_t *usb_serial_jtag_config);
int usb_serial_jtag_read_bytes(void *buf, uint32_t length, TickType_t ticks_to_wait);
int usb_serial_jtag_write_bytes(const void *src, size_t size, TickType_t ticks_to_wait);
#endif
