/* The device side of docs/protocol.md: the undecided / framed / terminal modes, the frames, the upload
 * (go-back-N over ef_slots), verify, commit, confirm, rollback, reset, and terminal mode's line editor
 * and commands. The port feeds received bytes in and gives a write function; all buffers are static. */
#ifndef EF_PROTOCOL_H
#define EF_PROTOCOL_H
#include <stdint.h>
#include "app.h"
#include "chat.h"
#include "frame.h"
#include "image.h"
#include "slots.h"

#ifndef EF_MAX_FRAME
#define EF_MAX_FRAME 4106          /* 4096 data bytes a chunk */
#endif
#define EF_UPLOAD_WINDOW 4
/* The idle rule (docs/protocol.md section 1): in framed mode, after at least this long with no byte
 * received, a line with no 0x00 (printable bytes up to Enter, or Ctrl-C) is a person's: the runtime
 * leaves framed mode for terminal mode. A framed host starts every frame with 0x00, so its frames never
 * look like such a line. Needs the port's clock (now_us); without one the rule is off. */
#ifndef EF_IDLE_MS
#define EF_IDLE_MS 1000
#endif
#define EF_RUNTIME_VERSION "0.1.0"
#define EF_WASM3_VERSION "0.9.0"

typedef struct {
  /* set by the port */
  const char *board_name;
  const ef_read_opts *opts;        /* board id, accepts, capacity, key */
  ef_slots *slots;
  uint32_t stack_bytes;
  uint32_t linear_max;             /* the board's linear memory, 0: the image's plan (the virtual board plays a board's) */
  void (*write)(void *ctx, const uint8_t *b, uint32_t n);
  void *write_ctx;
  uint32_t (*heap_free)(void);
  uint32_t (*heap_largest)(void);
  uint64_t (*now_us)(void);        /* a monotonic clock for STATS and the idle rule (0: neither) */
  /* state */
  int mode;                        /* 0 undecided, 1 framed, 2 terminal */
  int delim_sent;                  /* the 0x00 before the first frame of framed mode */
  ef_rx rx;
  uint32_t host_max_frame;
  int booted;                      /* slot, -1 none */
  int committed;                   /* the slot the last COMMIT made pending (a repeated COMMIT answers it), -1 none */
  ef_image img;
  ef_app *app;
  int reset;                       /* RESET asked: the port restarts the runtime */
  uint32_t last_tps_x1000;
  char line[256];
  uint32_t line_n;
  uint8_t last_cr;
  uint8_t term_fresh;              /* terminal mode just began: an empty first line shows the banner */
  uint8_t person;                  /* framed, after an idle line: the bytes so far could be a person's line (in line[]) */
  uint64_t quiet_us;               /* when the runtime last took bytes in (the idle rule counts from here) */
  float temperature, top_p;
  uint32_t seed, steps;
  /* the model and the reply in progress */
  ef_chat chat;
  int chat_ready;                  /* model_init passed: CHAT is served */
  ef_chat_error chat_why;          /* else why not */
  int busy;                        /* a reply streams: 0 none, 1 framed, 2 terminal */
  uint8_t chat_seq;
  uint64_t t_start, t_first, t_last;
  int term_new;                    /* terminal: the next line starts a new conversation */
  uint32_t self_test_tokens;       /* tokens of the first-boot self-test (0: 4) */
} ef_proto;

/* Boots (ef_slots_boot, the app, the self-test and confirm of a pending image) and prints the banner. */
void ef_proto_start(ef_proto *p);
void ef_proto_input(ef_proto *p, const uint8_t *b, uint32_t n);
/* The peer went away, where a port can tell (USB CDC's DTR; a UART cannot): undecided again, banner
 * again (a reply in progress stops). The host's BYE and the idle rule do the same without the port. */
void ef_proto_hangup(ef_proto *p);
/* A reply is streaming: the port calls ef_proto_step after feeding whatever input has arrived (so a
 * CANCEL or Ctrl-C is seen between tokens). Each step runs one position of the model. */
int ef_proto_busy(const ef_proto *p);
void ef_proto_step(ef_proto *p);
#endif
