#define _POSIX_C_SOURCE 200809L
#include "line.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double ef_line_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t next64(ef_line *l) {
  uint64_t z = (l->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint32_t threshold(double p) {
  if (!(p > 0)) return 0;
  if (p >= 1) return 0xFFFFFFFFu;
  return (uint32_t)(p * 4294967296.0);
}

void ef_line_init(ef_line *l, int fd_in, int fd_out, uint32_t baud, double drop, double flip, uint64_t seed) {
  memset(l, 0, sizeof *l);
  l->baud = baud;
  l->drop = threshold(drop);
  l->flip = threshold(flip);
  l->rng = seed;
  ef_line_reset(l, fd_in, fd_out);
}

void ef_line_reset(ef_line *l, int fd_in, int fd_out) {
  l->fd_in = fd_in;
  l->fd_out = fd_out;
  l->rx_at = l->rx_n = 0;
  l->tx_at = l->tx_n = 0;
  l->rx_clock = l->tx_clock = ef_line_now();
  l->dead = 0;
}

/* One byte through the faults: 0 when it is dropped, else 1 with *b maybe flipped. Both draws are made
 * for every byte, so the sequence of faults depends on the seed and the byte count only. */
static int fault(ef_line *l, uint8_t *b, uint64_t *dropped, uint64_t *flipped) {
  uint64_t r;
  if (!l->drop && !l->flip) return 1;
  r = next64(l);
  if ((uint32_t)r < l->drop) { (*dropped)++; return 0; }
  if ((uint32_t)(r >> 32) < l->flip) { *b ^= (uint8_t)(1u << (next64(l) & 7)); (*flipped)++; }
  return 1;
}

static double byte_s(const ef_line *l) { return 10.0 / (double)l->baud; }

int ef_line_fill(ef_line *l) {
  uint32_t room;
  ssize_t n;
  if (l->rx_at == l->rx_n) l->rx_at = l->rx_n = 0;
  if (l->rx_at > 0 && l->rx_n == EF_LINE_RX_CAP) {
    memmove(l->rx, l->rx + l->rx_at, l->rx_n - l->rx_at);
    l->rx_n -= l->rx_at;
    l->rx_at = 0;
  }
  room = EF_LINE_RX_CAP - l->rx_n;
  if (!room) return 0;
  n = read(l->fd_in, l->rx + l->rx_n, room);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
  if (n < 0 && errno == EIO) return -2;
  if (n <= 0) return -1;
  if (l->baud && l->rx_at == l->rx_n) {
    /* the line was idle: these bytes start arriving now */
    double now = ef_line_now();
    if (l->rx_clock < now) l->rx_clock = now;
  }
  l->rx_n += (uint32_t)n;
  return 1;
}

uint32_t ef_line_take(ef_line *l, uint8_t *out, uint32_t cap) {
  uint32_t avail = l->rx_n - l->rx_at, n = avail, got = 0, i;
  if (l->baud && avail) {
    /* bytes the line has carried by now: one each 10 bit times after the clock */
    double due = (ef_line_now() - l->rx_clock) / byte_s(l);
    n = due < 1 ? 0 : due >= (double)avail ? avail : (uint32_t)due;
  }
  if (n > cap) n = cap;
  for (i = 0; i < n; i++) {
    uint8_t b = l->rx[l->rx_at + i];
    l->rx_bytes++;
    if (fault(l, &b, &l->rx_dropped, &l->rx_flipped)) out[got++] = b;
  }
  l->rx_at += n;
  if (l->baud) l->rx_clock += n * byte_s(l);
  return got;
}

/* Writes n bytes from the queue's head; 0 when the peer is gone or nothing could be written now. */
static uint32_t put(ef_line *l, uint32_t n) {
  uint32_t done = 0;
  double stuck = 0;
  while (done < n && !l->dead) {
    ssize_t w = write(l->fd_out, l->tx + l->tx_at + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      /* a pty nobody reads fills up; a UART sends its bytes all the same, and they are lost */
      struct pollfd q = {l->fd_out, POLLOUT, 0};
      if (stuck == 0) stuck = ef_line_now();
      else if (ef_line_now() - stuck > EF_LINE_UNREAD_S) { l->tx_unread += n - done; done = n; break; }
      poll(&q, 1, 50);
      continue;
    }
    if (w <= 0) { l->dead = 1; break; }   /* the peer is gone; what it misses it asks again */
    done += (uint32_t)w;
    stuck = 0;
  }
  if (l->dead) done = n;   /* dropped with the link */
  l->tx_at += done;
  if (l->tx_at == l->tx_n) l->tx_at = l->tx_n = 0;
  return done;
}

void ef_line_flush(ef_line *l) {
  uint32_t avail = l->tx_n - l->tx_at, n = avail;
  if (!avail) return;
  if (l->baud) {
    double due = (ef_line_now() - l->tx_clock) / byte_s(l);
    n = due < 1 ? 0 : due >= (double)avail ? avail : (uint32_t)due;
    l->tx_clock += n * byte_s(l);
  }
  if (n) put(l, n);
}

void ef_line_send(ef_line *l, const uint8_t *b, uint32_t n) {
  uint32_t i;
  if (l->baud && l->tx_at == l->tx_n) {
    double now = ef_line_now();
    if (l->tx_clock < now) l->tx_clock = now;
  }
  for (i = 0; i < n; i++) {
    uint8_t c = b[i];
    l->tx_bytes++;
    if (!fault(l, &c, &l->tx_dropped, &l->tx_flipped)) continue;
    while (l->tx_n == EF_LINE_TX_CAP) {
      /* the queue is full: wait for the line (a long reply at a low baud rate) */
      if (l->tx_at) {
        memmove(l->tx, l->tx + l->tx_at, l->tx_n - l->tx_at);
        l->tx_n -= l->tx_at;
        l->tx_at = 0;
        continue;
      }
      ef_line_flush(l);
      if (l->tx_n == EF_LINE_TX_CAP) { struct timespec ts = {0, 1000000}; nanosleep(&ts, 0); }
    }
    l->tx[l->tx_n++] = c;
  }
  ef_line_flush(l);
}

static int ms_until(double clock_next) {
  double ms = (clock_next - ef_line_now()) * 1000;
  return ms <= 0 ? 0 : (int)ms + 1;
}

int ef_line_wait_ms(const ef_line *l) {
  int a = -1, b = -1;
  if (l->rx_n > l->rx_at) a = l->baud ? ms_until(l->rx_clock + byte_s(l)) : 0;
  if (l->tx_n > l->tx_at) b = l->baud ? ms_until(l->tx_clock + byte_s(l)) : 0;
  if (a < 0) return b;
  if (b < 0) return a;
  return a < b ? a : b;
}

void ef_line_report(const ef_line *l, char *buf, uint32_t cap) {
  snprintf(buf, cap, "\"baud\":%u,\"rx_bytes\":%llu,\"rx_dropped\":%llu,\"rx_flipped\":%llu,\"tx_bytes\":%llu,\"tx_dropped\":%llu,\"tx_flipped\":%llu,\"tx_unread\":%llu",
           (unsigned)l->baud, (unsigned long long)l->rx_bytes, (unsigned long long)l->rx_dropped, (unsigned long long)l->rx_flipped,
           (unsigned long long)l->tx_bytes, (unsigned long long)l->tx_dropped, (unsigned long long)l->tx_flipped, (unsigned long long)l->tx_unread);
}
