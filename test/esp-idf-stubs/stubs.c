/* The stand-ins' behaviour, for the generated firmware built on a PC (test/firmware.test.ts). They
 * stay for what real ESP-IDF cannot do here, running the firmware on x86 (include/esp_err.h says more):
 * ESP-IDF itself checks the same projects in test/esp-idf.test.ts.
 *   EF_STUB_PARTITIONS  the project's partitions.csv: the partition table esp_partition_* find
 *   EF_STUB_FLASH       the flash: a file of EF_STUB_FLASH_SIZE bytes (made, erased, when missing);
 *                       NOR rules: erase sets 4 KiB sectors to 0xFF, a write only clears bits
 *   EF_STUB_PSRAM       bytes of PSRAM (0 or unset: none, and a MALLOC_CAP_SPIRAM request fails)
 * A mapping (esp_partition_mmap) is a copy of flash as it was when mapped, as a cache that is never
 * told of later writes would show it: a port that reads through an old mapping reads old bytes.
 * The console (UART0 or USB-Serial-JTAG, whichever was installed) is stdin/stdout; end of stdin ends
 * the program. esp_restart starts the program again with the same arguments (the pipes stay open).
 * At exit, one line on stderr: watchdog feeds, the console in use, PSRAM bytes held. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "driver/uart.h"
#include "driver/usb_serial_jtag.h"
#include "esp_heap_caps.h"
#include "esp_partition.h"
#include "esp_system.h"
#include "esp_task_wdt.h"

void app_main(void);

#define SECTOR 4096u
static char **saved_argv;
static esp_partition_t parts[16];
static int n_parts = -1;
static uint8_t *flash;
static uint64_t flash_size;
static unsigned long wdt_feeds;
static int wdt_added;
static const char *console = "none";
static size_t psram_held, psram_size;

static void fail(const char *what, const char *why) {
  fprintf(stderr, "esp-idf stub: %s: %s\n", what, why);
  exit(3);
}

/* A failed system call: perror's line (errno.h is not included: 32-bit builds lack its asm/ headers here). */
static void fail_os(const char *what) {
  fprintf(stderr, "esp-idf stub: ");
  perror(what);
  exit(3);
}

static void report(void) {
  fprintf(stderr, "esp-idf stub: wdt_feeds=%lu console=%s psram_held=%lu\n", wdt_feeds, console, (unsigned long)psram_held);
}

static unsigned long size_field(const char *s) {
  char *end;
  unsigned long v = strtoul(s, &end, 0);
  while (*end == ' ') end++;
  if (*end == 'K' || *end == 'k') v *= 1024;
  else if (*end == 'M' || *end == 'm') v *= 1024 * 1024;
  return v;
}

static void load_table(void) {
  const char *path = getenv("EF_STUB_PARTITIONS"), *fpath = getenv("EF_STUB_FLASH"), *fsize = getenv("EF_STUB_FLASH_SIZE");
  char line[256];
  FILE *f;
  int fd;
  if (n_parts >= 0) return;
  if (!path || !fpath || !fsize) fail("environment", "EF_STUB_PARTITIONS, EF_STUB_FLASH and EF_STUB_FLASH_SIZE are required");
  if (!(f = fopen(path, "r"))) fail_os(path);
  n_parts = 0;
  while (fgets(line, sizeof line, f)) {
    char *field[6], *p = line;
    int n = 0;
    if (line[0] == '#' || line[0] == '\n') continue;
    while (n < 6 && p) {
      char *c = strchr(p, ',');
      if (c) *c = 0;
      while (*p == ' ') p++;
      field[n++] = p;
      p = c ? c + 1 : 0;
    }
    if (n < 5 || n_parts == 16) fail(path, "a row with fewer than 5 fields, or more than 16 rows");
    {
      esp_partition_t *q = &parts[n_parts++];
      char *e = field[0] + strlen(field[0]);
      while (e > field[0] && e[-1] == ' ') *--e = 0;
      snprintf(q->label, sizeof q->label, "%s", field[0]);
      q->type = strncmp(field[1], "app", 3) ? ESP_PARTITION_TYPE_DATA : ESP_PARTITION_TYPE_APP;
      q->subtype = (esp_partition_subtype_t)0;
      q->address = (uint32_t)size_field(field[3]);
      q->size = (uint32_t)size_field(field[4]);
      q->erase_size = SECTOR;
    }
  }
  fclose(f);
  flash_size = strtoull(fsize, 0, 0);
  if ((fd = open(fpath, O_RDWR | O_CREAT, 0644)) < 0) fail_os(fpath);
  {
    off_t have = lseek(fd, 0, SEEK_END);
    if (have < 0) fail_os(fpath);
    if ((uint64_t)have < flash_size) {
      /* new flash reads erased */
      static uint8_t ff[SECTOR];
      uint64_t at = (uint64_t)have;
      memset(ff, 0xFF, sizeof ff);
      while (at < flash_size) {
        size_t n = flash_size - at < SECTOR ? (size_t)(flash_size - at) : SECTOR;
        if (pwrite(fd, ff, n, (off_t)at) != (ssize_t)n) fail_os(fpath);
        at += n;
      }
    }
  }
  flash = mmap(0, (size_t)flash_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (flash == MAP_FAILED) fail_os(fpath);
  for (fd = 0; fd < n_parts; fd++)
    if ((uint64_t)parts[fd].address + parts[fd].size > flash_size) fail(parts[fd].label, "ends past the flash");
}

const esp_partition_t *esp_partition_find_first(esp_partition_type_t type, esp_partition_subtype_t subtype, const char *label) {
  int i;
  (void)subtype;
  load_table();
  for (i = 0; i < n_parts; i++)
    if ((type == ESP_PARTITION_TYPE_ANY || parts[i].type == type) && (!label || !strcmp(parts[i].label, label))) return &parts[i];
  return 0;
}

static int in_part(const esp_partition_t *p, size_t off, size_t n) { return p && (uint64_t)off + n <= p->size; }

esp_err_t esp_partition_read(const esp_partition_t *p, size_t off, void *dst, size_t n) {
  if (!in_part(p, off, n)) return ESP_ERR_INVALID_SIZE;
  memcpy(dst, flash + p->address + off, n);
  return ESP_OK;
}

esp_err_t esp_partition_write(const esp_partition_t *p, size_t off, const void *src, size_t n) {
  size_t i;
  if (!in_part(p, off, n)) return ESP_ERR_INVALID_SIZE;
  for (i = 0; i < n; i++) flash[p->address + off + i] &= ((const uint8_t *)src)[i];
  return ESP_OK;
}

esp_err_t esp_partition_erase_range(const esp_partition_t *p, size_t off, size_t n) {
  if (!in_part(p, off, n)) return ESP_ERR_INVALID_SIZE;
  if (off % SECTOR || n % SECTOR) return ESP_ERR_INVALID_ARG;
  memset(flash + p->address + off, 0xFF, n);
  return ESP_OK;
}

static void *maps[16];
esp_err_t esp_partition_mmap(const esp_partition_t *p, size_t off, size_t n, esp_partition_mmap_memory_t memory, const void **out, esp_partition_mmap_handle_t *handle) {
  uint32_t h;
  if (!in_part(p, off, n) || memory != ESP_PARTITION_MMAP_DATA) return ESP_ERR_INVALID_ARG;
  for (h = 0; h < 16 && maps[h]; h++) {}
  if (h == 16) return ESP_ERR_NO_MEM;   /* the MMU's pages are few: a port that never unmaps runs out */
  if (!(maps[h] = malloc(n ? n : 1))) return ESP_ERR_NO_MEM;
  memcpy(maps[h], flash + p->address + off, n);
  *out = maps[h];
  *handle = h;
  return ESP_OK;
}

void esp_partition_munmap(esp_partition_mmap_handle_t h) {
  if (h < 16) { free(maps[h]); maps[h] = 0; }
}

void *heap_caps_malloc(size_t size, uint32_t caps) { return heap_caps_realloc(0, size, caps); }
void *heap_caps_realloc(void *ptr, size_t size, uint32_t caps) {
  if (caps & MALLOC_CAP_SPIRAM) {
    /* only linear memory asks for PSRAM (linear_psram.c): one block, resized */
    if (size > psram_size) return 0;
    ptr = realloc(ptr, size);
    if (ptr) psram_held = size;
    return ptr;
  }
  return realloc(ptr, size);
}
void heap_caps_free(void *ptr) { free(ptr); }
size_t heap_caps_get_free_size(uint32_t caps) { return caps & MALLOC_CAP_SPIRAM ? psram_size - psram_held : 256 * 1024; }
size_t heap_caps_get_largest_free_block(uint32_t caps) { return caps & MALLOC_CAP_SPIRAM ? psram_size - psram_held : 160 * 1024; }

esp_err_t esp_task_wdt_add(TaskHandle_t t) { (void)t; wdt_added = 1; return ESP_OK; }
esp_err_t esp_task_wdt_reset(void) {
  if (!wdt_added) return ESP_ERR_NOT_FOUND;   /* as ESP-IDF: the task is not subscribed */
  wdt_feeds++;
  return ESP_OK;
}

void vTaskDelay(const TickType_t ticks) {
  struct timespec ts;
  ts.tv_sec = ticks / 1000;
  ts.tv_nsec = (long)(ticks % 1000) * 1000000L;
  nanosleep(&ts, 0);
}

/* The scheduler's tick count, at this stand-in's 1 ms tick (portTICK_PERIOD_MS). */
TickType_t xTaskGetTickCount(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (TickType_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

void esp_restart(void) {
  fflush(stdout);
  report();
  execv("/proc/self/exe", saved_argv);
  fail_os("esp_restart");
  exit(3);
}

static int line_read(void *buf, uint32_t n, TickType_t wait) {
  struct pollfd q;
  ssize_t r;
  q.fd = 0; q.events = POLLIN; q.revents = 0;
  if (poll(&q, 1, (int)wait) <= 0) return 0;
  r = read(0, buf, n);
  if (r == 0) exit(0);   /* the host is gone: the run is over */
  return r < 0 ? 0 : (int)r;
}
static int line_write(const void *src, size_t n) {
  ssize_t w = write(1, src, n);
  return w < 0 ? -1 : (int)w;
}

static int uart_on, usj_on;
esp_err_t uart_driver_install(uart_port_t u, int rx, int tx, int qs, QueueHandle_t *q, int fl) {
  (void)qs; (void)q; (void)fl;
  if (u != UART_NUM_0 || rx <= 128) return ESP_ERR_INVALID_ARG;   /* ESP-IDF wants rx_buffer_size > the FIFO */
  if (tx != 0 && tx <= 128) return ESP_ERR_INVALID_ARG;            /* and tx_buffer_size 0 or > the FIFO */
  uart_on = 1; console = "uart";
  return ESP_OK;
}
esp_err_t uart_param_config(uart_port_t u, const uart_config_t *c) {
  if (u != UART_NUM_0 || c->baud_rate <= 0 || c->data_bits != UART_DATA_8_BITS) return ESP_ERR_INVALID_ARG;
  fprintf(stderr, "esp-idf stub: uart0 at %d baud\n", c->baud_rate);
  return ESP_OK;
}
int uart_read_bytes(uart_port_t u, void *buf, uint32_t n, TickType_t wait) { if (!uart_on || u != UART_NUM_0) return -1; return line_read(buf, n, wait); }
int uart_write_bytes(uart_port_t u, const void *src, size_t n) { if (!uart_on || u != UART_NUM_0) return -1; return line_write(src, n); }

esp_err_t usb_serial_jtag_driver_install(usb_serial_jtag_driver_config_t *c) {
  if (!c || c->rx_buffer_size == 0 || c->tx_buffer_size == 0) return ESP_ERR_INVALID_ARG;
  if (c->intr_priority != 0) return ESP_ERR_INVALID_ARG;   /* ESP-IDF master's driver refuses a non-zero priority */
  usj_on = 1; console = "usb-serial-jtag";
  return ESP_OK;
}
int usb_serial_jtag_read_bytes(void *buf, uint32_t n, TickType_t wait) { if (!usj_on) return -1; return line_read(buf, n, wait); }
int usb_serial_jtag_write_bytes(const void *src, size_t n, TickType_t wait) { (void)wait; if (!usj_on) return -1; return line_write(src, n); }

int main(int argc, char **argv) {
  const char *ps = getenv("EF_STUB_PSRAM");
  (void)argc;
  saved_argv = argv;
  psram_size = ps ? (size_t)strtoull(ps, 0, 0) : 0;
  atexit(report);
  setvbuf(stdout, 0, _IONBF, 0);
  app_main();
  return 0;
}
