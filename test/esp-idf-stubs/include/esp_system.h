/* Stand-in (see esp_err.h): esp_restart starts the program again (the flash file keeps its bytes). */
#ifndef STUB_ESP_SYSTEM_H
#define STUB_ESP_SYSTEM_H
void esp_restart(void) __attribute__((noreturn));
#endif
