/* The instruction-count harness: a C program's per-token instruction counts on RV32IMC, printed over
 * the UART (host/bench/isa.ts builds it, boots it in QEMU with `-icount shift=0` and reads the counts).
 *
 * Counting: with -icount shift=0 QEMU's virtual clock advances one nanosecond per guest instruction
 * and the mcycle CSR reads that clock, so a difference of two reads is the number of instructions
 * executed between them, exactly and the same on every run (the harness takes no interrupts).
 * A "token" is one iteration of the program's decode loop: the interval between two consecutive
 * ef_isa_mark() calls (run.c: its fflush(stdout) after each printed token, tools/bench/isa/runc-isa.h).
 *
 * Files: the program's inputs (model, tokenizer) and its argv come in one blob (host/bench/isa.ts
 * writes it): u32 magic "EFIS", u32 count, count entries of { char name[24]; u32 offset; u32 size },
 * offsets from the blob's start; the entry named "@args" holds argv, NUL-separated. Where the blob is:
 * - EF_ISA_ESP32C3: in SPI flash at EF_ISA_FLASH_OFFSET, mapped through the cache MMU into the data
 *   bus window at 0x3C000000 (64 KiB pages), read in place as an app reads flash-mapped data;
 * - EF_ISA_VIRT (QEMU's virt machine, same ISA, more RAM): loaded into RAM at 0x88000000.
 * Output: the program's stdout/stderr, then lines starting with "@isa " (counts, exit). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(EF_ISA_VIRT)
#define UART_THR ((volatile uint8_t *)0x10000000u)
#define FILES ((const uint8_t *)0x88000000u)
static void plat_init(void) {}
static void uart_putc(char c) { *UART_THR = (uint8_t)c; }
/* QEMU's sifive_test device: 0x5555 powers off, (code << 16) | 0x3333 exits with that code */
static void plat_exit(int code) {
  *(volatile uint32_t *)0x100000u = code ? ((uint32_t)code << 16) | 0x3333u : 0x5555u;
  for (;;) {}
}
#elif defined(EF_ISA_ESP32C3)
#ifndef EF_ISA_FLASH_OFFSET
#define EF_ISA_FLASH_OFFSET 0x100000u
#endif
#define REG(a) (*(volatile uint32_t *)(a))
#define UART0_FIFO 0x60000000u
#define UART0_STATUS 0x6000001Cu /* TXFIFO_CNT: bits 16..25 */
#define MMU_TABLE 0x600C5000u    /* one entry per 64 KiB page of the 0x3C000000 window: flash page number */
#define DBUS_BASE 0x3C000000u
#define FILES ((const uint8_t *)DBUS_BASE)
static void plat_init(void) {
  uint32_t i;
  /* the watchdogs the ROM's flash boot leaves running: RTC WDT, super WDT (auto-fed), TIMG0/1 WDT */
  REG(0x600080A8u) = 0x50D83AA1u; REG(0x60008090u) = 0; REG(0x600080A8u) = 0;
  REG(0x600080B0u) = 0x8F1D312Au; REG(0x600080ACu) |= 1u << 31; REG(0x600080B0u) = 0;
  REG(0x6001F064u) = 0x50D83AA1u; REG(0x6001F048u) = 0; REG(0x6001F064u) = 0;
  REG(0x60020064u) = 0x50D83AA1u; REG(0x60020048u) = 0; REG(0x60020064u) = 0;
  /* the blob's 64 KiB flash pages into the data window, from its start */
  for (i = 0; i < 128 - EF_ISA_FLASH_OFFSET / 0x10000u; i++) REG(MMU_TABLE + 4 * i) = EF_ISA_FLASH_OFFSET / 0x10000u + i;
}
static void uart_putc(char c) {
  while (((REG(UART0_STATUS) >> 16) & 0x3FFu) >= 120) {}
  REG(UART0_FIFO) = (uint8_t)c;
}
static void plat_exit(int code) {
  (void)code;
  for (;;) {}
}
#else
#error "define EF_ISA_VIRT or EF_ISA_ESP32C3"
#endif

/* ---- the counter ---- */
static inline uint32_t ef_isa_ticks(void) {
  uint32_t v;
  __asm__ volatile(".option push\n.option arch, +zicsr\ncsrr %0, mcycle\n.option pop" : "=r"(v));
  return v;
}
/* all 64 bits (a span of more than 2^32 instructions: run.c under wasm3 counts whole decodes) */
static uint64_t ef_isa_ticks64(void) {
  uint32_t hi, lo, hi2;
  do {
    __asm__ volatile(".option push\n.option arch, +zicsr\ncsrr %0, mcycleh\ncsrr %1, mcycle\ncsrr %2, mcycleh\n.option pop" : "=r"(hi), "=r"(lo), "=r"(hi2));
  } while (hi != hi2);
  return ((uint64_t)hi << 32) | lo;
}

#ifndef EF_ISA_MAX_MARKS
#define EF_ISA_MAX_MARKS 1024
#endif
static uint64_t marks[EF_ISA_MAX_MARKS];
static uint64_t last_tick;
static uint32_t n_marks;

void ef_isa_mark(void) {
  uint64_t t = ef_isa_ticks64();
  if (n_marks < EF_ISA_MAX_MARKS) marks[n_marks++] = t - last_tick;
  last_tick = ef_isa_ticks64();
}

/* ---- stdio on the UART (picolibc's tinystdio) ----
 * Kept in RAM while the program runs and sent at its end (or when the buffer fills): waiting on the
 * UART's FIFO takes as many polls as the host's side of the emulated line allows, which would make
 * the counts differ between runs by a few instructions. */
static char console[16384];
static uint32_t console_n;
static void console_flush(void) {
  uint32_t i;
  for (i = 0; i < console_n; i++) {
    if (console[i] == '\n') uart_putc('\r');
    uart_putc(console[i]);
  }
  console_n = 0;
}
static int ef_putc(char c, FILE *f) {
  (void)f;
  if (console_n == sizeof console) console_flush();
  console[console_n++] = c;
  return (unsigned char)c;
}
static FILE ef_stdio = FDEV_SETUP_STREAM(ef_putc, NULL, NULL, _FDEV_SETUP_WRITE);
FILE *const stdin = &ef_stdio;
FILE *const stdout = &ef_stdio;
FILE *const stderr = &ef_stdio;

static void report(int code) {
  uint32_t i;
  printf("\n@isa marks %lu\n@isa counts", (unsigned long)n_marks);
  for (i = 0; i < n_marks; i++) {
    char d[24];
    int k = (int)sizeof d - 1;
    uint64_t v = marks[i];
    d[k] = 0;
    do { d[--k] = (char)('0' + v % 10); v /= 10; } while (v);
    printf(" %s", d + k);
  }
  printf("\n@isa heap-top %lu\n@isa exit %d\n", (unsigned long)(uintptr_t)sbrk(0), code);
}

void _exit(int code) {
  report(code);
  console_flush();
  plat_exit(code);
  for (;;) {}
}

/* start.S points mtvec here: a fault (a stack or heap overrun, an illegal access) is reported and ends
 * the run (exit 99) */
void ef_isa_trap(void) {
  uint32_t cause, epc, tval;
  __asm__ volatile(".option push\n.option arch, +zicsr\ncsrr %0, mcause\ncsrr %1, mepc\ncsrr %2, mtval\n.option pop" : "=r"(cause), "=r"(epc), "=r"(tval));
  printf("\n@isa trap mcause %lu mepc 0x%08lx mtval 0x%08lx\n", (unsigned long)cause, (unsigned long)epc, (unsigned long)tval);
  _exit(99);
}

/* abort() raises SIGABRT through these (picolibc's signal.c): the program ends with 128 + the signal */
pid_t getpid(void) { return 1; }
int kill(pid_t pid, int sig) {
  (void)pid;
  _exit(128 + sig);
}

/* ---- files: the blob's entries, read in place ---- */
struct ef_isa_entry { char name[24]; uint32_t offset, size; };
struct ef_isa_file { const uint8_t *p; uint32_t size, pos; int used; };
static struct ef_isa_file files[8];

static const struct ef_isa_entry *find(const char *path) {
  uint32_t i, n;
  const struct ef_isa_entry *e = (const struct ef_isa_entry *)(FILES + 8);
  if (memcmp(FILES, "EFIS", 4)) return 0;
  memcpy(&n, FILES + 4, 4);
  while (*path == '/') path++;
  for (i = 0; i < n; i++)
    if (!strncmp(e[i].name, path, sizeof e[i].name)) return &e[i];
  return 0;
}

int ef_isa_open(const char *path, int flags) {
  const struct ef_isa_entry *e = find(path);
  int i;
  (void)flags;
  if (!e) return -1;
  for (i = 0; i < 8; i++)
    if (!files[i].used) {
      files[i].p = FILES + e->offset; files[i].size = e->size; files[i].pos = 0; files[i].used = 1;
      return i + 3;
    }
  return -1;
}
int ef_isa_close(int fd) {
  if (fd < 3 || fd >= 11 || !files[fd - 3].used) return -1;
  files[fd - 3].used = 0;
  return 0;
}
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  (void)addr; (void)prot; (void)flags;
  if (fd < 3 || fd >= 11 || !files[fd - 3].used || (uint32_t)off + len > files[fd - 3].size) return MAP_FAILED;
  return (void *)(files[fd - 3].p + off);
}
int munmap(void *addr, size_t len) { (void)addr; (void)len; return 0; }

/* a file's bytes where they lie (app_run's image: tools/bench/isa/app-isa.h) */
const uint8_t *ef_isa_map(const char *path, long *n) {
  const struct ef_isa_entry *e = find(path);
  if (!e) return 0;
  *n = (long)e->size;
  return FILES + e->offset;
}

/* the size of an open file and, when buf is not NULL, up to len of its bytes from pos (wasi_run.c) */
int ef_isa_read_at(int fd, uint32_t pos, void *buf, uint32_t len, uint32_t *size) {
  if (fd < 3 || fd >= 11 || !files[fd - 3].used) return -1;
  *size = files[fd - 3].size;
  if (buf && pos < files[fd - 3].size) memcpy(buf, files[fd - 3].p + pos, files[fd - 3].size - pos < len ? files[fd - 3].size - pos : len);
  return 0;
}
uint64_t ef_isa_instructions(void) { return ef_isa_ticks64(); }

/* FILE handles of the blob's files: a struct ef_isa_file behind the FILE pointer (only these
 * functions ever see them: runc-isa.h routes fopen/fread/fseek/ftell/fclose here) */
FILE *ef_isa_fopen(const char *path, const char *mode) {
  int fd = ef_isa_open(path, 0);
  (void)mode;
  return fd < 0 ? NULL : (FILE *)(void *)&files[fd - 3];
}
size_t ef_isa_fread(void *buf, size_t size, size_t n, FILE *f) {
  struct ef_isa_file *h = (struct ef_isa_file *)(void *)f;
  size_t k = size ? (h->size - h->pos) / size : 0;
  if (k > n) k = n;
  memcpy(buf, h->p + h->pos, k * size);
  h->pos += (uint32_t)(k * size);
  return k;
}
int ef_isa_fseek(FILE *f, long off, int whence) {
  struct ef_isa_file *h = (struct ef_isa_file *)(void *)f;
  long base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (long)h->pos : (long)h->size;
  if (base + off < 0 || base + off > (long)h->size) return -1;
  h->pos = (uint32_t)(base + off);
  return 0;
}
long ef_isa_ftell(FILE *f) { return (long)((struct ef_isa_file *)(void *)f)->pos; }
int ef_isa_fclose(FILE *f) { ((struct ef_isa_file *)(void *)f)->used = 0; return 0; }

int ef_isa_fflush(FILE *f) {
  ef_isa_mark();
  return fflush(f);
}

/* the program's clock: instructions as nanoseconds (run.c's ms clock and seed) */
long ef_isa_time_ms(void) { return (long)(ef_isa_ticks64() / 1000000u); }

int ef_isa_clock(struct timespec *ts) {
  uint64_t t = ef_isa_ticks64();
  ts->tv_sec = (time_t)(t / 1000000000u);
  ts->tv_nsec = (long)(t % 1000000000u);
  return 0;
}

int EF_ISA_PROGRAM_MAIN(int argc, char **argv);

void ef_isa_main(void) {
  static char *argv[16];
  const struct ef_isa_entry *a;
  int argc = 0, code;
  plat_init();
  if (!(a = find("@args"))) { printf("@isa error no @args in the files blob\n"); _exit(3); }
  {
    const char *p = (const char *)FILES + a->offset, *end = p + a->size;
    while (p < end && argc < 15) { argv[argc++] = (char *)p; p += strlen(p) + 1; }
  }
  argv[argc] = 0;
  printf("@isa start\n");
  console_flush();
  last_tick = ef_isa_ticks64();
  code = EF_ISA_PROGRAM_MAIN(argc, argv);
  _exit(code);
}
