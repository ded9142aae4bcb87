/* The model behind CHAT: the booted image's descriptor handed to the app's model_init, then the
 * app's own turn API (docs/abi.md: gen_begin / gen_next for generate, chat_reset / chat_turn /
 * chat_next for chat turns), one position per call, so the port can read CANCEL between tokens.
 * The same loops as host/model/generate.ts (generateInApp, chat): a board serves the turns
 * `edge-flash run <image>` gives. Nothing is allocated here: the model lives in the app's arena. */
#ifndef EF_CHAT_H
#define EF_CHAT_H
#include <stdint.h>
#include "app.h"
#include "image.h"

/* assembly/model/chat.ts's codes */
enum { EF_CHAT_TOO_LONG = -1, EF_CHAT_CONTEXT_FULL = -2, EF_CHAT_NO_TOKENIZER = -3 };
enum { EF_CHAT_END_TEXT = -1, EF_CHAT_REPLY_LIMIT = -2, EF_CHAT_CONTEXT_END = -3, EF_CHAT_ERROR = -4 };
#define EF_CHAT_TEMPLATE_BYTES 34

/* STATS reasons (docs/protocol.md) */
enum { EF_END_STEPS = 0, EF_END_TEXT_REASON = 1, EF_END_CANCELLED = 2, EF_END_CONTEXT = 3, EF_END_FAILED = 4 };

typedef struct {
  ef_app *app;
  const ef_image *img;
  uint32_t context;        /* the model's positions (the descriptor's seq) */
  uint32_t text_bytes;     /* the app's prompt buffer */
  uint32_t linear;         /* model_memory() after model_init */
  int ready;               /* model_init passed */
  /* the turn in progress */
  int mode;                /* 0 generate, 1 chat */
  int open;                /* a chat conversation is under way (chat_reset done for it) */
  int running;
  uint32_t prompt_tokens, sampled;
  uint32_t forced, pieces;  /* generate: the prompt's own pieces (min(tokens - 1, steps)), pieces sent */
  uint32_t conv_steps;     /* chat: the conversation's positions (chat_reset's argument) */
  int has_chat_token;      /* the app exports chat_token (the id chat_next just printed) */
} ef_chat;

typedef struct {
  uint32_t seed;           /* 0 is replaced by the caller (the device picks) */
  float temperature, top_p;
  uint32_t steps;          /* positions, prompt included; 0: the context */
  int mode;                /* 0 generate, 1 chat turn */
  int new_conversation;
} ef_chat_settings;

/* The result of a begin or a step that failed: a protocol error code (EF_E_*), its arg, one line. */
typedef struct { uint16_t code; uint32_t arg; char msg[200]; } ef_chat_error;

/* The image's descriptor section (EF_KIND_DESCRIPTOR, checked by the reader), or NULL. */
const ef_section *ef_chat_descriptor(const ef_image *img);

/* model_init from the image's descriptor section, checked against the image's plan. 0 or -1 (e). */
int ef_chat_init(ef_chat *c, ef_app *app, const ef_image *img, ef_chat_error *e);

/* Starts a reply: sampler, prompt into the app, tokenized and prefilled (generate) or the turn
 * started (chat). 0 with *prompt_tokens, or -1 (e). */
int ef_chat_begin(ef_chat *c, const ef_chat_settings *s, const uint8_t *prompt, uint32_t len, uint32_t *prompt_tokens, ef_chat_error *e);

/* One position: 1 with a piece to send (*text, *len bytes in linear memory, valid until the next call;
 * *token its id; *sampled 0 for the prompt's own pieces in generate), 0 at the reply's end with
 * *reason (EF_END_*), -1 on a trap (e; the turn is over). */
int ef_chat_step(ef_chat *c, const uint8_t **text, uint32_t *len, uint32_t *token, int *sampled, int *reason, ef_chat_error *e);

/* The first-boot self-test: a few greedy tokens of generate from an empty prompt. 0 or -1 (e). */
int ef_chat_self_test(ef_chat *c, uint32_t tokens, ef_chat_error *e);
#endif
