#include "console.h"
#include "board_config.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#define RX_BUFFER 8192   /* two whole frames of EF_MAX_FRAME, COBS included, while the core is busy */
#define TX_BUFFER 4096

#if EF_CONSOLE_USB_SERIAL_JTAG
#include "driver/usb_serial_jtag.h"

const char *ef_console_open(void) {
  /* ESP-IDF's defaults first: fields later versions add (intr_priority, which the driver refuses unless 0)
   * keep their default values */
  usb_serial_jtag_driver_config_t c = USB_SERIAL_JTAG_DRIVER_CONFIG_DEFAULT();
  c.rx_buffer_size = RX_BUFFER;
  c.tx_buffer_size = TX_BUFFER;
  return usb_serial_jtag_driver_install(&c) == ESP_OK ? 0 : "usb_serial_jtag_driver_install failed";
}

uint32_t ef_console_read(uint8_t *buf, uint32_t cap, uint32_t wait_ms) {
  int n = usb_serial_jtag_read_bytes(buf, cap, pdMS_TO_TICKS(wait_ms));
  return n > 0 ? (uint32_t)n : 0;
}

void ef_console_write(const uint8_t *b, uint32_t n) {
  while (n) {
    /* with no host reading, the controller's buffer stays full: what is lost the host asks again */
    int w = usb_serial_jtag_write_bytes(b, n, pdMS_TO_TICKS(100));
    if (w <= 0) return;
    b += w;
    n -= (uint32_t)w;
  }
}
#else
#include "driver/uart.h"

const char *ef_console_open(void) {
  uart_config_t c = {0};
  c.baud_rate = EF_CONSOLE_BAUD;
  c.data_bits = UART_DATA_8_BITS;
  c.parity = UART_PARITY_DISABLE;
  c.stop_bits = UART_STOP_BITS_1;
  c.flow_ctrl = UART_HW_FLOWCTRL_DISABLE;
  c.source_clk = UART_SCLK_DEFAULT;
  if (uart_driver_install(UART_NUM_0, RX_BUFFER, TX_BUFFER, 0, NULL, 0) != ESP_OK) return "uart_driver_install failed";
  return uart_param_config(UART_NUM_0, &c) == ESP_OK ? 0 : "uart_param_config failed";
}

uint32_t ef_console_read(uint8_t *buf, uint32_t cap, uint32_t wait_ms) {
  int n = uart_read_bytes(UART_NUM_0, buf, cap, pdMS_TO_TICKS(wait_ms));
  return n > 0 ? (uint32_t)n : 0;
}

void ef_console_write(const uint8_t *b, uint32_t n) {
  while (n) {
    int w = uart_write_bytes(UART_NUM_0, b, n);   /* blocks until the bytes are in the TX buffer */
    if (w <= 0) return;
    b += w;
    n -= (uint32_t)w;
  }
}
#endif
