/* Framing (docs/protocol.md section 2): COBS-encoded bodies between 0x00 delimiters, a body being
 * type, seq, payload, CRC-32. The receiver takes one byte at a time, never stores more than a frame's
 * worth, skips everything before the first 0x00, and reports each defect once at the frame's end.
 * Frame types, payload ranges and codes come from test/vectors/protocol/protocol.gen.h. */
#ifndef EF_FRAME_H
#define EF_FRAME_H
#include <stdint.h>

/* Types, payload ranges, error codes: generated from host/board/frames.ts, the one table. */
#include "../../../test/vectors/protocol/protocol.gen.h"

enum {
  EF_T_HELLO = EF_HELLO, EF_T_INFO = EF_INFO, EF_T_BYE = EF_BYE, EF_T_UPLOAD_BEGIN = EF_UPLOAD_BEGIN, EF_T_UPLOAD_CHUNK = EF_UPLOAD_CHUNK,
  EF_T_VERIFY = EF_VERIFY, EF_T_COMMIT = EF_COMMIT, EF_T_CONFIRM = EF_CONFIRM, EF_T_ROLLBACK = EF_ROLLBACK, EF_T_RESET = EF_RESET,
  EF_T_CHAT = EF_CHAT, EF_T_CANCEL = EF_CANCEL, EF_T_REPLY = EF_REPLY_BIT, EF_T_TOKEN = EF_TOKEN, EF_T_STATS = EF_STATS,
  EF_T_LOG = EF_LOG, EF_T_ERROR = EF_ERROR,
};
enum {
  EF_E_BAD_FRAME = EF_ERR_BAD_FRAME, EF_E_BAD_CRC = EF_ERR_BAD_CRC, EF_E_UNKNOWN_TYPE = EF_ERR_UNKNOWN_TYPE,
  EF_E_BAD_LENGTH = EF_ERR_BAD_LENGTH, EF_E_FRAME_TOO_LARGE = EF_ERR_FRAME_TOO_LARGE, EF_E_VERSION = EF_ERR_VERSION,
  EF_E_BUSY = EF_ERR_BUSY, EF_E_NO_UPLOAD = EF_ERR_NO_UPLOAD, EF_E_TOO_LARGE = EF_ERR_TOO_LARGE, EF_E_BAD_OFFSET = EF_ERR_BAD_OFFSET,
  EF_E_INCOMPLETE = EF_ERR_INCOMPLETE, EF_E_STORAGE = EF_ERR_STORAGE, EF_E_NOT_VERIFIED = EF_ERR_NOT_VERIFIED,
  EF_E_SHA_MISMATCH = EF_ERR_SHA_MISMATCH, EF_E_IMAGE = EF_ERR_IMAGE, EF_E_NO_PREVIOUS = EF_ERR_NO_PREVIOUS,
  EF_E_BAD_SIZE = EF_ERR_BAD_SIZE, EF_E_NO_IMAGE = EF_ERR_NO_IMAGE, EF_E_PROMPT_TOO_LONG = EF_ERR_PROMPT_TOO_LONG,
  EF_E_TRAP = EF_ERR_TRAP, EF_E_BAD_SETTINGS = EF_ERR_BAD_SETTINGS, EF_E_OUT_OF_MEMORY = EF_ERR_OUT_OF_MEMORY,
  EF_E_INTERNAL = EF_ERR_INTERNAL,
};

/* The payload range a device accepts for a host-to-device type; 0 for a type it does not receive.
 * max == 0xFFFFFFFF means "up to max_frame - 6". */
int ef_frame_host_type(uint8_t type, uint32_t *min, uint32_t *max);


typedef struct {
  uint8_t type, seq;
  const uint8_t *payload;
  uint32_t len;
} ef_frame;

typedef enum { EF_RX_NONE = 0, EF_RX_FRAME, EF_RX_ERROR } ef_rx_result;

typedef struct {
  uint8_t *buf;               /* EF_COBS_MAX(max_frame) bytes, the port's static buffer */
  uint32_t max_frame;
  uint32_t n;                 /* encoded bytes since the last 0x00 */
  uint8_t synced;             /* a 0x00 has been seen */
  uint8_t overflow;           /* more than the limit arrived: only counted now */
  /* the error, when ef_rx_byte returns EF_RX_ERROR */
  uint16_t err_code;
  uint32_t err_arg;
  uint8_t err_type, err_seq;
} ef_rx;

void ef_rx_init(ef_rx *rx, uint8_t *buf, uint32_t max_frame);
/* Feeds one byte; on EF_RX_FRAME *f points into rx's buffer until the next call. */
ef_rx_result ef_rx_byte(ef_rx *rx, uint8_t b, ef_frame *f);
/* Starts skipping again until the next 0x00 (after a mode change). */
void ef_rx_unsync(ef_rx *rx);

/* Encodes type, seq, payload and their CRC as COBS + 0x00 into out (cap bytes); returns the bytes
 * written, 0 when it does not fit. body is scratch of at least len + 6 bytes. */
/* COBS of n bytes into out (EF_COBS_MAX(n) bytes); returns the encoded length. */
uint32_t ef_cobs_encode(const uint8_t *in, uint32_t n, uint8_t *out);
uint32_t ef_frame_encode(uint8_t type, uint8_t seq, const uint8_t *payload, uint32_t len, uint8_t *body, uint8_t *out, uint32_t cap);
#endif
