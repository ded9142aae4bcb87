#include "frame.h"
#include <string.h>
#include "crc32.h"

int ef_frame_host_type(uint8_t type, uint32_t *min, uint32_t *max) {
  const uint32_t ANY = 0xFFFFFFFFu;
  switch (type) {
  /* the table writes a variable length as MAX 0 with MIN > 0, a fixed empty payload as MIN 0 MAX 0 */
#define T(NAME) case EF_##NAME: *min = EF_##NAME##_MIN; *max = EF_##NAME##_MAX ? (uint32_t)EF_##NAME##_MAX : EF_##NAME##_MIN ? ANY : 0; return 1;
    T(HELLO) T(INFO) T(BYE) T(UPLOAD_BEGIN) T(UPLOAD_CHUNK) T(VERIFY) T(COMMIT) T(CONFIRM) T(ROLLBACK) T(RESET) T(CHAT) T(CANCEL)
#undef T
    default: return 0;
  }
}

void ef_rx_init(ef_rx *rx, uint8_t *buf, uint32_t max_frame) {
  memset(rx, 0, sizeof *rx);
  rx->buf = buf;
  rx->max_frame = max_frame;
}

void ef_rx_unsync(ef_rx *rx) { rx->synced = 0; rx->n = 0; rx->overflow = 0; }

static ef_rx_result error(ef_rx *rx, uint16_t code, uint32_t arg, uint8_t type, uint8_t seq) {
  rx->err_code = code; rx->err_arg = arg; rx->err_type = type; rx->err_seq = seq;
  return EF_RX_ERROR;
}

/* In-place COBS decode of rx->buf[0, n); returns the body length or -1. */
static int64_t cobs_decode(uint8_t *b, uint32_t n) {
  uint32_t in = 0, out = 0;
  while (in < n) {
    uint32_t k = b[in++], i;
    if (k == 0 || (uint64_t)in + k - 1 > n) return -1;
    for (i = 1; i < k; i++) b[out++] = b[in++];
    if (k < 255 && in < n) b[out++] = 0;
  }
  return out;
}

ef_rx_result ef_rx_byte(ef_rx *rx, uint8_t b, ef_frame *f) {
  uint32_t limit = EF_COBS_MAX(rx->max_frame), min, max, len, crc, got;
  int64_t body;
  if (!rx->synced) {
    if (b == 0) { rx->synced = 1; rx->n = 0; rx->overflow = 0; }
    return EF_RX_NONE;
  }
  if (b != 0) {
    if (rx->n < limit) rx->buf[rx->n++] = b;
    else rx->overflow = 1;
    return EF_RX_NONE;
  }
  /* a delimiter: judge the frame it ends */
  len = rx->n;
  rx->n = 0;
  if (rx->overflow) { rx->overflow = 0; return error(rx, EF_E_FRAME_TOO_LARGE, rx->max_frame, 0, 0); }
  if (len == 0) return EF_RX_NONE;
  body = cobs_decode(rx->buf, len);
  if (body < 0) return error(rx, EF_E_BAD_FRAME, 0, 0, 0);
  if (body > rx->max_frame) return error(rx, EF_E_FRAME_TOO_LARGE, rx->max_frame, 0, 0);
  if (body < 6) return error(rx, EF_E_BAD_FRAME, 0, body >= 1 ? rx->buf[0] : 0, body >= 2 ? rx->buf[1] : 0);
  len = (uint32_t)body;
  crc = (uint32_t)rx->buf[len - 4] | (uint32_t)rx->buf[len - 3] << 8 | (uint32_t)rx->buf[len - 2] << 16 | (uint32_t)rx->buf[len - 1] << 24;
  got = ef_crc32(0, rx->buf, len - 4);
  if (got != crc) return error(rx, EF_E_BAD_CRC, got, rx->buf[0], rx->buf[1]);
  if (!ef_frame_host_type(rx->buf[0], &min, &max)) return error(rx, EF_E_UNKNOWN_TYPE, rx->buf[0], rx->buf[0], rx->buf[1]);
  if (max == 0xFFFFFFFFu) max = rx->max_frame - 6;
  if (len - 6 < min || len - 6 > max) return error(rx, EF_E_BAD_LENGTH, len - 6, rx->buf[0], rx->buf[1]);
  f->type = rx->buf[0];
  f->seq = rx->buf[1];
  f->payload = rx->buf + 2;
  f->len = len - 6;
  return EF_RX_FRAME;
}

uint32_t ef_frame_encode(uint8_t type, uint8_t seq, const uint8_t *payload, uint32_t len, uint8_t *body, uint8_t *out, uint32_t cap) {
  uint32_t n = len + 6, crc, o;
  if ((uint64_t)EF_COBS_MAX((uint64_t)n) + 1 > cap) return 0;
  body[0] = type;
  body[1] = seq;
  if (len) memmove(body + 2, payload, len);
  crc = ef_crc32(0, body, len + 2);
  body[len + 2] = (uint8_t)crc; body[len + 3] = (uint8_t)(crc >> 8); body[len + 4] = (uint8_t)(crc >> 16); body[len + 5] = (uint8_t)(crc >> 24);
  o = ef_cobs_encode(body, n, out);
  out[o++] = 0;
  return o;
}

/* Wikipedia's StuffData */
uint32_t ef_cobs_encode(const uint8_t *in, uint32_t n, uint8_t *out) {
  uint32_t i, o = 1, code_at = 0;
  uint8_t code = 1;
  for (i = 0; i < n; i++) {
    if (in[i] == 0) {
      out[code_at] = code; code_at = o++; code = 1;
    } else {
      out[o++] = in[i];
      if (++code == 0xFF) { out[code_at] = code; code_at = o++; code = 1; }
    }
  }
  out[code_at] = code;
  return o;
}
