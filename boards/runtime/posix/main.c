/* edge-flash-runtime: the device runtime on POSIX, the virtual board (and what a Raspberry Pi runs).
 *   edge-flash-runtime [board options] --slot-file F --status          slot states, one JSON line
 *   edge-flash-runtime [board options] --slot-file F --install IMAGE   upload, verify, commit (the
 *                                                                       core's upload path, from a file)
 *   edge-flash-runtime [board options] --slot-file F --boot            boot: trial, self-test, confirm
 *     [--call EXPORT]...                                                then call i32() exports of the app
 *   edge-flash-runtime [board options] --slot-file F --serve (--pty | --port TTY [--baud B] | --stdio)
 *                                      the protocol (docs/protocol.md); --pty prints {"pty": PATH}
 *   the line (posix/line.h), with --pty or --stdio: --baud B paces it at B (10 bits a byte, both ways);
 *   --drop R, --flip R drop or flip bits of each byte with probability R, from --fault-seed S;
 *   --disconnect-at PCT closes the pty once PCT % of an upload arrived (once per image) and opens a new
 *   one (the upload stays: the next UPLOAD_BEGIN resumes); --pty-link PATH keeps a symlink to the pty.
 * --board-name NAME names the board in the banner and INFO.
 * Board options: --board-id N --accepts N,N --capacity BYTES --erase-block BYTES --key HEX64
 * --stop-at-op N (or EDGE_FLASH_STOP_AT_OP): die at storage operation N, half-way (power-cut sweep).
 * Results are JSON lines on stdout; errors one line `edge-flash-runtime: ...` on stderr, exit 2. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#include "line.h"
#include "serial.h"

#define RUNTIME_VERSION "0.1.0"

static int die(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "edge-flash-runtime: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  return 2;
}

static const char *state_name(uint8_t s) {
  static const char *const N[EF_SLOT_STATE_COUNT] = EF_SLOT_NAMES;
  return s < EF_SLOT_STATE_COUNT ? N[s] : "?";
}

/* A number written whole (strtod reads it all) in [lo, hi]. */
static int number(const char *v, double lo, double hi, double *out) {
  char *end;
  double x;
  if (!*v) return 0;
  x = strtod(v, &end);
  if (*end || !(x >= lo && x <= hi)) return 0;
  *out = x;
  return 1;
}

static void print_hex(const uint8_t *b, int n) { int i; for (i = 0; i < n; i++) printf("%02x", b[i]); }

static void print_status(const ef_slots *s, const char *event, int booted) {
  int i;
  printf("{\"event\":\"%s\",\"seq\":%u,\"active\":%d,\"trial\":%u,\"booted\":%d,\"slots\":[", event, (unsigned)s->rec.seq,
         s->rec.active == EF_NO_SLOT ? -1 : s->rec.active, s->rec.trial, booted);
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

/* --linear-max: the linear memory of the board this runtime plays (0: the image's plan) */
static uint32_t linear_max;

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
    if (app && linear_max) ef_app_limit_memory(app, linear_max);
    /* the self-test (as ef_proto_start): a model's model_init from the image's descriptor, and a few
     * tokens of inference while the image is pending */
    if (app && ef_app_has(app, "model_init") && ef_chat_descriptor(&img)) {
      ef_chat_error ce;
      if (ef_chat_init(&chat, app, &img, &ce) || (s->rec.slot[slot].state == EF_SLOT_PENDING && ef_chat_self_test(&chat, 4, &ce))) {
        snprintf(err, sizeof err, "%s", ce.msg);
        ef_app_unload(app);
        app = 0;
      } else model = 1;
    }
    heap = heap_used() - before;
  }
  if (!app) {
    fprintf(stderr, "edge-flash-runtime: self-test failed: %s\n", err);
    if (s->rec.slot[slot].state == EF_SLOT_PENDING && (e = ef_slots_rollback(s))) return die("rollback: %s%s", ef_slots_code(e), "");
    print_status(s, "self_test_failed", slot);
    return 0;
  }
  if (s->rec.slot[slot].state == EF_SLOT_PENDING && (e = ef_slots_confirm(s))) return die("confirm: %s%s", ef_slots_code(e), "");
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

static void line_write(void *ctx, const uint8_t *b, uint32_t n) { ef_line_send((ef_line *)ctx, b, n); }

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

/* The line's options (--baud with --pty or --stdio, --drop, --flip, --fault-seed, --disconnect-at, --pty-link). */
typedef struct {
  uint32_t baud;
  double drop, flip;
  uint64_t seed;
  uint32_t disconnect_ppm;         /* drop the link once this many millionths of an upload arrived; 0: never */
  const char *link;                /* a symlink kept pointing at the pty, across link drops */
} line_opts;

static volatile sig_atomic_t stop_signal;
static void on_stop(int sig) { stop_signal = sig; }

/* --pty-link: the stable name of the pty (a new pty after each link drop gets a new /dev/pts path). */
static int relink(const char *link, const char *path) {
  char tmp[4200];
  if (!link) return 0;
  if (strlen(link) > 4000) return -1;
  snprintf(tmp, sizeof tmp, "%s.%ld.new", link, (long)getpid());
  unlink(tmp);
  if (symlink(path, tmp)) return -1;
  return rename(tmp, link);
}

static int open_pty(int *slave, const char *link) {
  char path[128];
  int fd = ef_serial_pty(path, sizeof path, slave);
  if (fd < 0) return -1;
  /* non-blocking: a pty nobody reads must not stop the runtime (line.c drops what waits too long) */
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) { close(fd); close(*slave); return -1; }
  if (relink(link, path)) { close(fd); close(*slave); return -1; }
  printf("{\"event\":\"pty\",\"pty\":\"%s\"", path);
  if (link) printf(",\"link\":\"%s\"", link);
  printf("}\n");
  fflush(stdout);
  return fd;
}

/* One virtual board per slot file: `<slot file>.lock` carries a POSIX record lock, which the kernel
 * drops when its process ends (so a lock file left by a dead process is taken over: no stale lock
 * can hold a slot file), and one line naming its holder: `pid board link`. */
static char lock_path[4200];

static int lock_slot_file(const char *slot_file, const char *board_name, const char *link) {
  struct flock fl;
  char line[600];
  int fd, n;
  if (strlen(slot_file) > 4000) return die("slot file name too long: %s%s", slot_file, "");
  snprintf(lock_path, sizeof lock_path, "%s.lock", slot_file);
  fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return die("cannot open %s: %s", lock_path, strerror(errno));
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (fcntl(fd, F_SETLK, &fl)) {
    struct flock q = fl;
    long pid = fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK ? (long)q.l_pid : 0;
    char who[600] = "", board[128] = "?", at[480] = "?";
    n = (int)read(fd, who, sizeof who - 1);
    who[n > 0 ? n : 0] = 0;
    /* "pid board link": the pid is skipped as a word (gcc refuses a length modifier on a suppressed %*ld) */
    if (sscanf(who, "%*s %127s %479s", board, at) < 1) board[0] = '?';
    lock_path[0] = 0;   /* not ours to remove */
    fprintf(stderr, "edge-flash-runtime: another virtual board (pid %ld) is serving %s on %s from %s: stop it (kill %ld) or give another slot file\n",
            pid, board, at, slot_file, pid);
    return 2;
  }
  n = snprintf(line, sizeof line, "%ld %s %s\n", (long)getpid(), board_name, link ? link : "-");
  if (ftruncate(fd, 0) || write(fd, line, (size_t)n) != n) return die("cannot write %s: %s", lock_path, strerror(errno));
  return 0;   /* fd stays open: the lock lasts as long as this process */
}

static int serve(ef_slots *slots, const ef_storage *st, const ef_read_opts *o, const char *board_name, const char *port, uint32_t baud, int use_pty, uint32_t stack, const line_opts *lo) {
  static ef_proto p;
  static ef_line line;
  uint8_t buf[4096], dropped_for[32];
  int fd, slave = -1, dropped_once = 0;
  FILE *events = use_pty == 2 ? stderr : stdout;   /* with --stdio, stdout is the line */
  char report[400];
  struct sigaction sa;
  if (use_pty == 2) {
    fd = 0;   /* --stdio: read stdin, write stdout (tests; a pipe is a line without termios) */
  } else if (use_pty) {
    fd = open_pty(&slave, lo->link);
    if (fd < 0) return die("cannot create a pseudo-terminal: %s%s", strerror(errno), "");
  } else {
    fd = ef_serial_open(port, baud);
    if (fd < 0) return die("cannot open %s: %s", port, strerror(errno));
  }
  /* a real port paces itself (termios); a pty or a pipe is paced by the line at --baud */
  ef_line_init(&line, fd, use_pty == 2 ? 1 : fd, port ? 0 : lo->baud, lo->drop, lo->flip, lo->seed);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;   /* no SA_RESTART: poll returns, the loop ends, the link is removed */
  sigaction(SIGTERM, &sa, 0);
  sigaction(SIGINT, &sa, 0);
  sigaction(SIGHUP, &sa, 0);
  memset(&p, 0, sizeof p);
  p.board_name = board_name;
  p.opts = o;
  p.slots = slots;
  p.stack_bytes = stack;
  p.linear_max = linear_max;
  p.write = line_write;
  p.write_ctx = &line;
  p.heap_free = heap_free;
  p.heap_largest = 0;   /* the C library does not say what its largest free block is: INFO reports 0 */
  p.now_us = now_us;
  ef_proto_start(&p);
  while (!stop_signal) {
    struct pollfd q = {fd, POLLIN, 0};
    int room = line.rx_n - line.rx_at < EF_LINE_RX_CAP, r;
    uint32_t n;
    int wait = ef_line_wait_ms(&line);
    /* a reply streams: no blocking; read what has arrived (CANCEL, Ctrl-C), then one position below */
    if (ef_proto_busy(&p)) wait = 0;
    r = poll(&q, room ? 1 : 0, wait);
    if (r < 0 && errno != EINTR) return die("serial poll: %s%s", strerror(errno), "");
    if (r > 0 && q.revents) {
      int got = ef_line_fill(&line);
      if (got == -1) break;   /* end of input: stdin closed */
      if (got == -2) { struct timespec ts = {0, 20000000}; nanosleep(&ts, 0); }   /* a pty between two hosts */
    }
    n = ef_line_take(&line, buf, sizeof buf);
    if (n) ef_proto_input(&p, buf, n);
    ef_line_flush(&line);
    if (p.reset) {
      /* RESET: the runtime starts again from the slot record, as after a power-on */
      if (ef_slots_open(slots, st)) return die("slot record unreadable after reset%s%s", "", "");
      ef_proto_start(&p);
    }
    if (ef_proto_busy(&p)) {
      ef_proto_step(&p);
      ef_line_flush(&line);
    }
    if (lo->disconnect_ppm && slots->up_slot >= 0) {
      /* --disconnect-at: the link drops once, per image, when that share of it has arrived; the
       * upload's state stays (RAM), so the host's next UPLOAD_BEGIN of the same image resumes */
      const ef_slot_info *si = &slots->rec.slot[slots->up_slot];
      if ((uint64_t)slots->up_next * 1000000u >= (uint64_t)lo->disconnect_ppm * si->size && (!dropped_once || memcmp(dropped_for, si->sha256, 32))) {
        memcpy(dropped_for, si->sha256, 32);
        dropped_once = 1;
        ef_line_report(&line, report, sizeof report);
        fprintf(events, "{\"event\":\"disconnect\",\"at\":%u,\"size\":%u,%s}\n", (unsigned)slots->up_next, (unsigned)si->size, report);
        fflush(events);
        close(fd);
        close(slave);
        fd = open_pty(&slave, lo->link);
        if (fd < 0) return die("cannot create a pseudo-terminal: %s%s", strerror(errno), "");
        ef_line_reset(&line, fd, fd);
        /* no ef_proto_hangup: a UART cannot see its cable pulled; the host's next HELLO (after its
         * 0x00) finds the runtime still framed, and a person's line after the idle time leaves it */
      }
    }
  }
  if (lo->link) unlink(lo->link);
  if (lock_path[0]) unlink(lock_path);   /* still locked while it goes: a newcomer waits for the next start */
  ef_line_report(&line, report, sizeof report);
  fprintf(events, "{\"event\":\"stopped\",%s}\n", report);
  fflush(events);
  return 0;
}

int main(int argc, char **argv) {
  ef_read_opts o;
  uint16_t accepts[8];
  uint8_t key[32];
  const char *slot_file = 0, *install_path = 0, *mode = 0, *stop = getenv("EDGE_FLASH_STOP_AT_OP");
  const char *port = 0, *board_name = "host";
  uint32_t baud = 0;
  int use_pty = 0;
  line_opts lo;
  double d;
  uint32_t erase_block = 4096, stack = 64 * 1024;
  uint64_t flash_size;
  ef_flash_file ff;
  ef_storage st;
  ef_slots slots;
  int i, rc;
  memset(&o, 0, sizeof o);
  memset(&lo, 0, sizeof lo);
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
    else if (!strcmp(a, "--linear-max")) { if (!number(v, 0, 4294967295.0, &d) || d != (uint32_t)d) return die("--linear-max: expected a whole number of bytes, got %s%s", v, ""); linear_max = (uint32_t)d; }
    else if (!strcmp(a, "--stop-at-op")) stop = v;
    else if (!strcmp(a, "--port")) port = v;
    else if (!strcmp(a, "--baud")) { if (!number(v, 1, 12000000, &d) || d != (uint32_t)d) return die("--baud: expected a whole number of bits a second, got %s%s", v, ""); baud = lo.baud = (uint32_t)d; }
    else if (!strcmp(a, "--drop")) { if (!number(v, 0, 1, &lo.drop)) return die("--drop: expected a probability in [0, 1], got %s%s", v, ""); }
    else if (!strcmp(a, "--flip")) { if (!number(v, 0, 1, &lo.flip)) return die("--flip: expected a probability in [0, 1], got %s%s", v, ""); }
    else if (!strcmp(a, "--fault-seed")) { if (!number(v, 0, 18446744073709551615.0, &d) || d != (double)(uint64_t)d) return die("--fault-seed: expected a whole number, got %s%s", v, ""); lo.seed = (uint64_t)d; }
    else if (!strcmp(a, "--disconnect-at")) { if (!number(v, 0, 100, &d) || !(d > 0 && d < 100)) return die("--disconnect-at: expected a percentage between 0 and 100 (exclusive), got %s%s", v, ""); lo.disconnect_ppm = (uint32_t)(d * 10000 + 0.5); if (!lo.disconnect_ppm) lo.disconnect_ppm = 1; }
    else if (!strcmp(a, "--pty-link")) lo.link = v;
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
  if (!strcmp(mode, "serve")) {
    if (!use_pty && !port) return die("--serve needs --pty or --port TTY%s%s", "", "");
    if ((lo.disconnect_ppm || lo.link) && use_pty != 1) return die("--disconnect-at and --pty-link need --pty (the link drop closes the pty)%s%s", "", "");
    if ((rc = lock_slot_file(slot_file, board_name, lo.link))) return rc;
  }
  if (ef_flash_file_open(&ff, &st, slot_file, (uint32_t)flash_size, erase_block)) return die("slot file %s: %s", slot_file, strerror(errno));
  if (stop) ff.stop_at_op = strtoull(stop, 0, 10);
  if (ef_slots_open(&slots, &st)) return die("slot file %s: cannot read the slot record%s", slot_file, "");
  if (!strcmp(mode, "status")) { print_status(&slots, "status", -1); rc = 0; }
  else if (!strcmp(mode, "install")) rc = install(&slots, &o, install_path);
  else if (!strcmp(mode, "serve")) rc = serve(&slots, &st, &o, board_name, port, baud, use_pty, stack, &lo);
  else rc = boot(&slots, &o, stack);
  fprintf(stderr, "edge-flash-runtime: storage operations: %llu\n", (unsigned long long)ff.ops);
  ef_flash_file_close(&ff);
  return rc;
}
