/* Stand-in (see ../esp_err.h): FreeRTOS ticks of 1 ms. */
#ifndef STUB_FREERTOS_H
#define STUB_FREERTOS_H
#include <stdint.h>
typedef uint32_t TickType_t;
typedef void *QueueHandle_t;
#define portTICK_PERIOD_MS ((TickType_t)1)
#define pdMS_TO_TICKS(ms) ((TickType_t)(ms))
#endif
