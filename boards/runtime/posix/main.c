/* edge-flash-runtime: the device runtime on POSIX, the virtual board (and what a Raspberry Pi runs).
 *   edge-flash-runtime [board options] --slot-file F --status          slot states, one JSON line
 *   edge-flash-runtime [board options] --slot-file F --install IMAGE   upload, verify, commit (the
 *                                                                       core's upload path, from a file)
 *   edge-flash-runtime [board options] --slot-file F --boot            boot: trial, self-test, confirm
 *     [--call EXPORT]...                                                then call i32() exports of the app
 *   edge-flash-runtime [board options] --slot-file F --serve (--pty | --port TTY [--baud B] | --stdio)
 *                                      the protocol (docs/protocol.md); --pty prints {"pty": PATH}
 * --board-name NAME names the board in the banner and INFO.
 * Board options: --board-id N --accepts N,N --capacity BYTES --erase-block BYTES --key HEX64
 * --stop-at-op N (or EDGE_FLASH_STOP_AT_OP): die at storage operation N, half-way (power-cut sweep).
 * Results are JSON lines on stdout; errors one line `edge-flash-runtime: ...` on stderr, exit 2. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/app.h"
#include "../core/chat.h"
#include "../core/image.h"
#include "../core/protocol.h"
#include "../core/sha256.h"
#include "../core/slots.h"
#include "flash_file.h"
#include "serial.h"

#define RUNTIME_VERSION "0.1.0"

static int die(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "edge-flash-runtime: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  return 2;
}

static const char *state_name(uint8_t s) {
  static const char *const N[] = {"empty", "uploading", "pending", "confirmed", "invalid"};
  return s <= EF_REC_INVALID ? N[s] : "?";
}

static void print_hex(const uint8_t *b, int n) { int i; for (i = 0; i < n; i++) printf("%02x", b[i]); }

static void print_status(const ef_slots *s, const char *event, int booted) {
  int i;
  printf("{\"event\":\"%s\",\"seq\":%u,\"active\":%d,\"trial\":%u,\"booted\":%d,\"slots\":[", event, (unsigned)s->rec.seq,
         s->rec.active == EF_REC_NONE ? -1 : s->rec.active, s->rec.trial, booted);
  for (i = 0; i < 2; i++) {
    printf("%s{\"state\":\"%s\",\"size\":%u,\"sha256\":\"", i ? "," : "", state_name(s->rec.slot[i].state), (unsigned)s->rec.slot[i].size);
    print_hex(s->rec.slot[i].sha256, 32);
    printf("\"}");
  }
  printf("]}\n");
  fflush(stdout);
}

static int unhex(const char *s, uint8_t *out, size_t n) {
  size_t i;
  if (strlen(s) != 2 * n) return 0;
  for (i = 0; i < n; i++) { unsigned v; if (sscanf(s + 2 * i, "%2x", &v) != 1) return 0; out[i] = (uint8_t)v; }
  return 1;
}

static void log_stderr(void *ctx, const char *text, uint32_t len) {
  (void)ctx;
  fprintf(stderr, "app: %.*s\n", (int)len, text);
}

static int install(ef_slots *s, const ef_read_opts *o, const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf, sha[32];
  long n;
  uint32_t next, at;
  char msg[256];
  ef_slots_err e;
  if (!f) return die("cannot open %s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n <= 0 || (unsigned long)n > 0xFFFFFFFFul) { fclose(f); return die("%s: not an image (%s)", path, "empty or over 4 GiB"); }
  buf = malloc((size_t)n);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); return die("cannot read %s: %s", path, strerror(errno)); }
  fclose(f);
  ef_sha256_once(buf, (size_t)n, sha);
  if ((e = ef_slots_upload_begin(s, (uint32_t)n, sha, &next))) { free(buf); return die("upload: %s%s", ef_slots_code(e), ""); }
  for (at = next; at < (uint32_t)n; at += 4096) {
    uint32_t len = (uint32_t)n - at < 4096 ? (uint32_t)n - at : 4096;
    if ((e = ef_slots_upload_write(s, at, buf + at, len))) { free(buf); return die("upload: %s%s", ef_slots_code(e), ""); }
  }
  free(buf);
  msg[0] = 0;
  if ((e = ef_slots_upload_verify(s, o, 0, msg, sizeof msg))) return die("verify: %s: %s", ef_slots_code(e), msg);
  if ((e = ef_slots_commit(s))) return die("commit: %s%s", ef_slots_code(e), "");
  print_status(s, "committed", -1);
  return 0;
}

/* Bytes of the C library heap in use (glibc's figure); 0 where the library does not say. */
static uint64_t heap_used(void) {
#ifdef __GLIBC__
  struct mallinfo2 m = mallinfo2();
  return (uint64_t)m.uordblks + (uint64_t)m.hblkhd;
#else
  return 0;
#endif
}

/* Boot: choose the slot, load its app; a pending image is confirmed when its self-test passes: the app
 * parses, links every import of the table, compiles and starts within the plan's linear memory, and a
 * model (an app with model_init) takes the image's descriptor and infers a few tokens. */
static const char *calls[8];
static int n_calls;

static int boot(ef_slots *s, const ef_read_opts *o, uint32_t stack) {
  ef_image img;
  int slot = -1;
  char err[256];
  ef_slots_err e = ef_slots_boot(s, o, &slot, &img);
  ef_app *app;
  static ef_chat chat;
  uint64_t heap = 0;
  int model = 0;
  if (e == EF_SLOTS_NO_IMAGE) { print_status(s, "no_image", -1); return 0; }
  if (e) return die("boot: %s%s", ef_slots_code(e), "");
  {
    uint64_t before = heap_used();
    app = ef_app_load(&img, stack, log_stderr, 0, err, sizeof err);
    /* the self-test (as ef_proto_start): a model's model_init from the image's descriptor, and a few
     * tokens of inference while the image is pending */
    if (app && ef_app_has(app, "model_init") && ef_chat_descriptor(&img)) {
      ef_chat_error ce;
      if (ef_chat_init(&chat, app, &img, &ce) || (s->rec.slot[slot].state == EF_REC_PENDING && ef_chat_self_test(&chat, 4, &ce))) {
        snprintf(err, sizeof err, "%s", ce.msg);
        ef_app_unload(app);
        app = 0;
      } else model = 1;
    }
    heap = heap_used() - before;
  }
  if (!app) {
    fprintf(stderr, "edge-flash-runtime: self-test failed: %s\n", err);
    if (s->rec.slot[slot].state == EF_REC_PENDING && (e = ef_slots_rollback(s))) return die("rollback: %s%s", ef_slots_code(e), "");
    print_status(s, "self_test_failed", slot);
    return 0;
  }
  if (s->rec.slot[slot].state == EF_REC_PENDING && (e = ef_slots_confirm(s))) return die("confirm: %s%s", ef_slots_code(e), "");
  print_status(s, "booted", slot);
  printf("{\"event\":\"app\",\"slot\":%d,\"sha256\":\"", slot);
  print_hex(s->rec.slot[slot].sha256, 32);
  /* heap_bytes: what wasm3 took from the C heap for the app (its code, stacks and linear memory) */
  printf("\",\"memory\":%u,\"memory_cap\":%u,\"model\":%s,\"heap_bytes\":%llu}\n", (unsigned)ef_app_memory(app), (unsigned)ef_app_memory_cap(app),
         model ? "true" : "false", (unsigned long long)heap);
  /* --call EXPORT: a trap is an error line and the app keeps serving the next call */
  {
    int i, j;
    for (i = 0; i < n_calls; i++) {
      int32_t r = 0;
      if (ef_app_call(app, calls[i], 0, 0, &r, err, sizeof err)) {
        printf("{\"event\":\"call\",\"export\":\"%s\",\"ok\":false,\"error\":\"", calls[i]);
        for (j = 0; err[j]; j++) printf(err[j] == '"' || err[j] == '\\' ? "\\%c" : "%c", err[j]);
        printf("\"}\n");
      } else {
        printf("{\"event\":\"call\",\"export\":\"%s\",\"ok\":true,\"result\":%d}\n", calls[i], (int)r);
      }
    }
  }
  ef_app_unload(app);
  return 0;
}

static void fd_write(void *ctx, const uint8_t *b, uint32_t n) {
  int fd = *(int *)ctx;
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) { struct pollfd q = {fd, POLLOUT, 0}; poll(&q, 1, 100); continue; }
    if (w <= 0) return;   /* the peer is gone; what it misses it asks again */
    b += w; n -= (uint32_t)w;
  }
}

/* The C library heap (glibc's arena figures); 0 where the library does not say. */
static uint32_t heap_free(void) {
#ifdef __GLIBC__
  struct mallinfo2 m = mallinfo2();
  return m.fordblks > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)m.fordblks;
#else
  return 0;
#endif
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int serve(ef_slots *slots, const ef_storage *st, const ef_read_opts *o, const char *board_name, const char *port, uint32_t baud, int use_pty, uint32_t stack) {
  static ef_proto p;
  uint8_t buf[4096];
  int fd;
  if (use_pty == 2) {
    fd = 0;   /* --stdio: read stdin, write stdout (tests; a pipe is a line without termios) */
  } else if (use_pty) {
    char path[128];
    fd = ef_serial_pty(path, sizeof path);
    if (fd < 0) return die("cannot create a pseudo-terminal: %s%s", strerror(errno), "");
    printf("{\"event\":\"pty\",\"pty\":\"%s\"}\n", path);
    fflush(stdout);
  } else {
    fd = ef_serial_open(port, baud);
    if (fd < 0) return die("cannot open %s: %s", port, strerror(errno));
  }
  memset(&p, 0, sizeof p);
  p.board_name = board_name;
  p.opts = o;
  p.slots = slots;
  p.stack_bytes = stack;
  p.write = fd_write;
  {
    static int wfd;
    wfd = use_pty == 2 ? 1 : fd;
    p.write_ctx = &wfd;
  }
  p.heap_free = heap_free;
  p.heap_largest = 0;   /* the C library does not say what its largest free block is: INFO reports 0 */
  p.now_us = now_us;
  ef_proto_start(&p);
  for (;;) {
    ssize_t n;
    if (ef_proto_busy(&p)) {
      /* a reply streams: take what has arrived (CANCEL, Ctrl-C), then one position of the model */
      struct pollfd q = {fd, POLLIN, 0};
      if (poll(&q, 1, 0) > 0 && (q.revents & POLLIN)) {
        n = read(fd, buf, sizeof buf);
        if (n > 0) ef_proto_input(&p, buf, (uint32_t)n);
        else if (n == 0 && use_pty == 2) return 0;
      }
      if (p.reset) { if (ef_slots_open(slots, st)) return die("slot record unreadable after reset%s%s", "", ""); ef_proto_start(&p); continue; }
      ef_proto_step(&p);
      continue;
    }
    n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0 && errno == EIO) { struct pollfd q = {fd, POLLIN, 0}; poll(&q, 1, 50); { struct timespec ts = {0, 20000000}; nanosleep(&ts, 0); } continue; }
    if (n <= 0) return n == 0 ? 0 : die("serial read: %s%s", strerror(errno), "");
    ef_proto_input(&p, buf, (uint32_t)n);
    if (p.reset) {
      /* RESET: the runtime starts again from the slot record, as after a power-on */
      if (ef_slots_open(slots, st)) return die("slot record unreadable after reset%s%s", "", "");
      ef_proto_start(&p);
    }
  }
}

int main(int argc, char **argv) {
  ef_read_opts o;
  uint16_t accepts[8];
  uint8_t key[32];
  const char *slot_file = 0, *install_path = 0, *mode = 0, *stop = getenv("EDGE_FLASH_STOP_AT_OP");
  const char *port = 0, *board_name = "host";
  uint32_t baud = 0;
  int use_pty = 0;
  uint32_t erase_block = 4096, stack = 64 * 1024;
  uint64_t flash_size;
  ef_flash_file ff;
  ef_storage st;
  ef_slots slots;
  int i, rc;
  memset(&o, 0, sizeof o);
  o.board_id = 1; /* host: the virtual board */
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : 0;
    if (!strcmp(a, "--imports")) {
      /* the link table, one `module name signature` a line (test/runtime-abi.test.ts) */
      uint32_t k;
      for (k = 0; k < EF_IMPORT_COUNT; k++) printf("%s %s %s\n", EF_IMPORTS[k].module, EF_IMPORTS[k].name, EF_IMPORTS[k].sig);
      return 0;
    }
    if (!strcmp(a, "--version")) { printf("edge-flash-runtime %s (wasm3 %s)\n", RUNTIME_VERSION, "0.9.0"); return 0; }
    if (!strcmp(a, "--status") || !strcmp(a, "--boot") || !strcmp(a, "--serve")) { mode = a + 2; continue; }
    if (!strcmp(a, "--pty")) { use_pty = 1; continue; }
    if (!strcmp(a, "--stdio")) { use_pty = 2; continue; }
    if (!v) return die("option %s needs a value%s", a, "");
    i++;
    if (!strcmp(a, "--slot-file")) slot_file = v;
    else if (!strcmp(a, "--install")) { mode = "install"; install_path = v; }
    else if (!strcmp(a, "--board-id")) o.board_id = (uint16_t)strtoul(v, 0, 10);
    else if (!strcmp(a, "--capacity")) o.capacity = strtoull(v, 0, 10);
    else if (!strcmp(a, "--erase-block")) erase_block = (uint32_t)strtoul(v, 0, 10);
    else if (!strcmp(a, "--stack")) stack = (uint32_t)strtoul(v, 0, 10);
    else if (!strcmp(a, "--stop-at-op")) stop = v;
    else if (!strcmp(a, "--port")) port = v;
    else if (!strcmp(a, "--baud")) baud = (uint32_t)strtoul(v, 0, 10);
    else if (!strcmp(a, "--board-name")) board_name = v;
    else if (!strcmp(a, "--call")) { if (n_calls < 8) calls[n_calls++] = v; }
    else if (!strcmp(a, "--key")) { if (!unhex(v, key, 32)) return die("--key: expected 64 hex digits, got %s%s", v, ""); o.public_key = key; }
    else if (!strcmp(a, "--accepts")) {
      char *p = (char *)v;
      while (*p && o.n_accepts < 8) { accepts[o.n_accepts++] = (uint16_t)strtoul(p, &p, 10); if (*p == ',') p++; }
      o.accepts = accepts;
    } else return die("unknown option %s%s", a, "");
  }
  if (!slot_file || !mode) return die("usage: edge-flash-runtime --slot-file F (--status | --install IMAGE | --boot) [board options]%s%s", "", "");
  if (erase_block < 128 || (erase_block & (erase_block - 1))) return die("--erase-block: expected a power of two >= 128%s%s", "", "");
  if (!o.capacity) o.capacity = 4u << 20;
  /* two record blocks and two slots, each the capacity rounded up to whole erase blocks */
  flash_size = 2ull * erase_block + 2ull * ((o.capacity + erase_block - 1) / erase_block * erase_block);
  if (flash_size > 0xFFFFFFFFull) return die("--capacity: two slots of it do not fit a 4 GiB region%s%s", "", "");
  if (ef_flash_file_open(&ff, &st, slot_file, (uint32_t)flash_size, erase_block)) return die("slot file %s: %s", slot_file, strerror(errno));
  if (stop) ff.stop_at_op = strtoull(stop, 0, 10);
  if (ef_slots_open(&slots, &st)) return die("slot file %s: cannot read the slot record%s", slot_file, "");
  if (!strcmp(mode, "status")) { print_status(&slots, "status", -1); rc = 0; }
  else if (!strcmp(mode, "install")) rc = install(&slots, &o, install_path);
  else if (!strcmp(mode, "serve")) {
    if (!use_pty && !port) return die("--serve needs --pty or --port TTY%s%s", "", "");
    rc = serve(&slots, &st, &o, board_name, port, baud, use_pty, stack);
  }
  else rc = boot(&slots, &o, stack);
  fprintf(stderr, "edge-flash-runtime: storage operations: %llu\n", (unsigned long long)ff.ops);
  ef_flash_file_close(&ff);
  return rc;
}
