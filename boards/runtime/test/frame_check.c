/* The C framing against test/vectors/protocol/ (test/runtime-frames.test.ts writes the cases):
 * one request a line on stdin, one answer a line on stdout.
 *   C <hex>                     -> COBS encoding of the bytes
 *   F <type> <seq> <hex>        -> the wire bytes of the frame (COBS(body) + 0x00)
 *   D <max_frame> <hex>         -> the events of a fresh device receiver fed the stream byte by byte:
 *                                  `frame <type> <seq> <payload hex>` or `error <code> <req_type> <seq> <arg>`,
 *                                  separated by ';' */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/frame.h"

static uint8_t in[200000], outb[EF_COBS_MAX(200000) + 8], body[200000], rxbuf[EF_COBS_MAX(65535)];
static char line[500000];

static uint32_t unhex(const char *s, uint8_t *o) {
  uint32_t n = 0;
  while (s[0] && s[1] && s[0] != '\n') { unsigned v; sscanf(s, "%2x", &v); o[n++] = (uint8_t)v; s += 2; }
  return n;
}
static void hex(const uint8_t *b, uint32_t n) { uint32_t i; for (i = 0; i < n; i++) printf("%02x", b[i]); }

int main(void) {
  while (fgets(line, sizeof line, stdin)) {
    if (line[0] == 'C') {
      uint32_t n = unhex(line + 2, in);
      hex(outb, ef_cobs_encode(in, n, outb));
    } else if (line[0] == 'F') {
      unsigned t, s;
      char *p = line + 2;
      uint32_t n;
      t = (unsigned)strtoul(p, &p, 10);
      s = (unsigned)strtoul(p, &p, 10);
      while (*p == ' ') p++;
      n = unhex(p, in);
      hex(outb, ef_frame_encode((uint8_t)t, (uint8_t)s, in, n, body, outb, sizeof outb));
    } else if (line[0] == 'D') {
      char *p = line + 2;
      uint32_t max = (uint32_t)strtoul(p, &p, 10), n, i;
      ef_rx rx;
      ef_frame f;
      int first = 1;
      while (*p == ' ') p++;
      n = unhex(p, in);
      ef_rx_init(&rx, rxbuf, max);
      for (i = 0; i < n; i++) {
        ef_rx_result r = ef_rx_byte(&rx, in[i], &f);
        if (r == EF_RX_NONE) continue;
        if (!first) printf(";");
        first = 0;
        if (r == EF_RX_FRAME) { printf("frame %u %u ", f.type, f.seq); hex(f.payload, f.len); }
        else printf("error %u %u %u %u", rx.err_code, rx.err_type, rx.err_seq, (unsigned)rx.err_arg);
      }
    }
    printf("\n");
    fflush(stdout);
  }
  return 0;
}
