/* Stand-in (see ../esp_err.h). */
#ifndef STUB_FREERTOS_TASK_H
#define STUB_FREERTOS_TASK_H
#include "FreeRTOS.h"
typedef void *TaskHandle_t;
void vTaskDelay(const TickType_t ticks);
TickType_t xTaskGetTickCount(void);
#endif
