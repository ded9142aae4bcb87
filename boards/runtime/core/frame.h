/* Framing (docs/protocol.md section 2): COBS-encoded bodies between 0x00 delimiters, a body being
 * type, seq, payload, CRC-32. The receiver takes one byte at a time, never stores more than a frame's
 * worth, skips everything before the first 0x00, and reports each defect once at the frame's end.
 * Frame types and payload ranges follow the spec's tables (section 4); when the generated
 * test/vectors/protocol/protocol.gen.h lands, these constants are to come from it. */
#ifndef EF_FRAME_H
#define EF_FRAME_H
#include <stdint.h>

#define EF_PROTOCOL_VERSION 1
#define EF_MIN_MAX_FRAME 256

enum {
  EF_T_HELLO = 0x01, EF_T_INFO = 0x02, EF_T_UPLOAD_BEGIN = 0x10, EF_T_UPLOAD_CHUNK = 0x11, EF_T_VERIFY = 0x12,
  EF_T_COMMIT = 0x13, EF_T_CONFIRM = 0x14, EF_T_ROLLBACK = 0x15, EF_T_RESET = 0x16, EF_T_CHAT = 0x20, EF_T_CANCEL = 0x21,
  EF_T_REPLY = 0x80, EF_T_TOKEN = 0x41, EF_T_STATS = 0x42, EF_T_LOG = 0x43, EF_T_ERROR = 0x7F,
};

enum {
  EF_E_BAD_FRAME = 1, EF_E_BAD_CRC = 2, EF_E_UNKNOWN_TYPE = 3, EF_E_BAD_LENGTH = 4, EF_E_FRAME_TOO_LARGE = 5,
  EF_E_VERSION = 6, EF_E_BUSY = 7, EF_E_NO_UPLOAD = 16, EF_E_TOO_LARGE = 17, EF_E_BAD_OFFSET = 18,
  EF_E_INCOMPLETE = 19, EF_E_STORAGE = 20, EF_E_NOT_VERIFIED = 21, EF_E_SHA_MISMATCH = 22, EF_E_IMAGE = 23,
  EF_E_NO_PREVIOUS = 24, EF_E_BAD_SIZE = 25, EF_E_NO_IMAGE = 32, EF_E_PROMPT_TOO_LONG = 33, EF_E_TRAP = 34,
  EF_E_BAD_SETTINGS = 35, EF_E_OUT_OF_MEMORY = 36, EF_E_INTERNAL = 48,
};

/* The payload range a device accepts for a host-to-device type; 0 for a type it does not receive.
 * max == 0xFFFFFFFF means "up to max_frame - 6". */
int ef_frame_host_type(uint8_t type, uint32_t *min, uint32_t *max);

/* Largest encoded size (without the delimiter) of a body of n bytes. */
#define EF_COBS_MAX(n) ((n) + 1 + (n) / 254)

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
uint32_t ef_frame_encode(uint8_t type, uint8_t seq, const uint8_t *payload, uint32_t len, uint8_t *body, uint8_t *out, uint32_t cap);
#endif
