/* The virtual board's serial line between the pty (or stdio) and the protocol: what a real UART and its
 * cable do to bytes, played on the host so that the bytes the protocol sees are a real link's.
 *  - the byte rate: with a baud rate, each direction moves at most baud / 10 bytes a second (start bit,
 *    8 data bits, stop bit), full duplex: received bytes wait in a buffer until the line would have
 *    delivered them, sent bytes wait in a queue until the line would have carried them;
 *  - faults, per byte and per direction, from one seeded PRNG (so a run can be repeated): a byte dropped
 *    with probability drop, one random bit of it flipped with probability flip.
 * The link drop (--disconnect-at) is the serve loop's (main.c): it closes the pty and opens a new one.
 * Like a UART, the line never tells the runtime that the other end left: the virtual board keeps the
 * pty's other end open itself (no hangup is ever seen) and a pty nobody reads does not block it.
 * Why here and not in a proxy on the host: the runtime owns the pty (Node cannot make one without a
 * native module), and on a board the same faults happen on the wire under the same protocol code. */
#ifndef EF_LINE_H
#define EF_LINE_H
#include <stdint.h>

#define EF_LINE_RX_CAP 8192
#define EF_LINE_TX_CAP 65536
/* A pty whose reader is gone (or never came) fills up: after this long with no byte taken, what is
 * queued is dropped, as a UART's bytes are lost when nobody listens (the runtime never blocks on it). */
#define EF_LINE_UNREAD_S 0.5

typedef struct {
  int fd_in, fd_out;
  uint32_t baud;                   /* 0: no pacing (the pty's own speed) */
  uint32_t drop, flip;             /* per-byte probability times 2^32 */
  uint64_t rng;                    /* splitmix64 state, from the seed */
  /* received bytes not yet delivered to the protocol, and when the line delivers the next one */
  uint8_t rx[EF_LINE_RX_CAP];
  uint32_t rx_at, rx_n;
  double rx_clock;
  /* bytes to send, not yet on the wire */
  uint8_t tx[EF_LINE_TX_CAP];
  uint32_t tx_at, tx_n;
  double tx_clock;
  int dead;                        /* the peer is gone (a write failed); cleared by ef_line_reset */
  /* counts, for the fault report */
  uint64_t rx_bytes, rx_dropped, rx_flipped, tx_bytes, tx_dropped, tx_flipped;
  uint64_t tx_unread;              /* bytes dropped because nobody read the pty (EF_LINE_UNREAD_S) */
} ef_line;

/* probabilities in [0, 1]; seed any number (0 is a seed like another) */
void ef_line_init(ef_line *l, int fd_in, int fd_out, uint32_t baud, double drop, double flip, uint64_t seed);
/* New file descriptors (a new pty after a link drop); queued bytes in both directions are lost, as on a cable pulled out. */
void ef_line_reset(ef_line *l, int fd_in, int fd_out);
double ef_line_now(void);
/* Reads what the fd has (when the buffer has room). Returns 1 if bytes came, 0 if none, -1 at end of
 * input (stdin closed), -2 on EIO (a pty with no peer: the caller waits). Non-blocking fd expected. */
int ef_line_fill(ef_line *l);
/* The received bytes the line has delivered by now, after the faults: up to cap of them into out. */
uint32_t ef_line_take(ef_line *l, uint8_t *out, uint32_t cap);
/* Queues bytes to send (faults applied) and writes what is due; blocks only when the queue is full. */
void ef_line_send(ef_line *l, const uint8_t *b, uint32_t n);
/* Writes the queued bytes that are due by now. */
void ef_line_flush(ef_line *l);
/* Milliseconds until the next byte is due in either direction (-1: nothing waits). */
int ef_line_wait_ms(const ef_line *l);
/* The report: one JSON object (no newline) into buf. */
void ef_line_report(const ef_line *l, char *buf, uint32_t cap);
#endif
