/* Stand-ins for the ESP-IDF calls the edge-flash port uses, written from ESP-IDF's documented
 * signatures (API reference, v5.x) so that the generated C compiles and runs on a PC. Not ESP-IDF.
 * They stay only for what the real ESP-IDF trees cannot do here: run the whole firmware on x86 (the
 * protocol vectors, uploads, a chat driven by the host's client). Whether the port compiles against
 * ESP-IDF's real headers, with ESP-IDF's own configure and command lines, is test/esp-idf.test.ts's
 * (tools/esp-idf-check.ts), and the storage layer runs on ESP-IDF's real linux-target esp_partition
 * there. Where the real part refuses something, the stand-in refuses it too (usb_serial_jtag.h). */
#ifndef STUB_ESP_ERR_H
#define STUB_ESP_ERR_H
typedef int esp_err_t;
#define ESP_OK 0
#define ESP_FAIL -1
#define ESP_ERR_NO_MEM 0x101
#define ESP_ERR_INVALID_ARG 0x102
#define ESP_ERR_INVALID_STATE 0x103
#define ESP_ERR_INVALID_SIZE 0x104
#define ESP_ERR_NOT_FOUND 0x105
#endif
