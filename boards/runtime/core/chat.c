#include "chat.h"
#include <stdio.h>
#include <string.h>
#include "frame.h"

static int fail(ef_chat_error *e, uint16_t code, uint32_t arg, const char *msg) {
  e->code = code;
  e->arg = arg;
  snprintf(e->msg, sizeof e->msg, "%s", msg);
  return -1;
}

/* An export's i32 result; a trap becomes TRAP with wasm3's line. */
static int call_i(ef_chat *c, const char *name, uint32_t argc, const uint32_t *argv, int32_t *r, ef_chat_error *e) {
  char err[200];
  if (ef_app_call(c->app, name, argc, argv, r, err, sizeof err)) return fail(e, EF_E_TRAP, 0, err);
  return 0;
}

static int sampler(ef_chat *c, float t, float p, uint64_t state, ef_chat_error *e) {
  ef_val v[3];
  char err[200];
  v[0].type = 'f'; v[0].v.f = t;
  v[1].type = 'f'; v[1].v.f = p;
  v[2].type = 'I'; v[2].v.I = state;
  if (ef_app_callv(c->app, "sampler_init", 3, v, 0, err, sizeof err)) return fail(e, EF_E_TRAP, 0, err);
  return 0;
}

/* The prompt's bytes into the app's buffer at tok_text(). */
static int put_text(ef_chat *c, const uint8_t *b, uint32_t n, ef_chat_error *e) {
  int32_t at;
  uint8_t *dst;
  if (call_i(c, "tok_text", 0, 0, &at, e)) return -1;
  if (!(dst = ef_app_guest(c->app, (uint32_t)at, n))) return fail(e, EF_E_INTERNAL, 0, "chat: tok_text() is outside linear memory");
  if (n) memcpy(dst, b, n);
  return 0;
}

const ef_section *ef_chat_descriptor(const ef_image *img) { return img->descriptor; }

int ef_chat_init(ef_chat *c, ef_app *app, const ef_image *img, ef_chat_error *e) {
  const ef_section *d = ef_chat_descriptor(img);
  uint32_t arg;
  int32_t at, r, top;
  uint8_t *dst;
  char msg[200];
  memset(c, 0, sizeof *c);
  c->app = app;
  c->img = img;
  if (!d) return fail(e, EF_E_IMAGE, 0, "the image has no descriptor section: pack it again with this edge-flash");
  if (call_i(c, "arena_reset", 0, 0, 0, e)) return -1;
  arg = d->size;
  if (call_i(c, "arena_alloc", 1, &arg, &at, e)) return -1;
  if (at == 0 || !(dst = ef_app_guest(app, (uint32_t)at, d->size))) {
    snprintf(msg, sizeof msg, "out of linear memory for the model descriptor (%u bytes)", (unsigned)d->size);
    return fail(e, EF_E_OUT_OF_MEMORY, d->size, msg);
  }
  memcpy(dst, img->bytes + d->offset, d->size);   /* the section's bounds were checked by the reader */
  arg = (uint32_t)at;
  if (call_i(c, "model_init", 1, &arg, &r, e)) return -1;
  if (r == 2) {
    if (img->config.planned_linear) snprintf(msg, sizeof msg, "model_init: out of linear memory (the plan needs %u bytes)", (unsigned)img->config.planned_linear);
    else snprintf(msg, sizeof msg, "model_init: out of linear memory (the image has no plan that fits a board: packed with --ignore-fit)");
    return fail(e, EF_E_OUT_OF_MEMORY, img->config.planned_linear, msg);
  }
  if (r != 0) {
    snprintf(msg, sizeof msg, "model_init rejected the image's descriptor (code %d)", (int)r);
    return fail(e, EF_E_IMAGE, 0, msg);
  }
  if (call_i(c, "model_memory", 0, 0, &top, e)) return -1;
  if (img->config.planned_linear && (uint32_t)top != img->config.planned_linear) {
    snprintf(msg, sizeof msg, "model_init reached %u bytes of linear memory, the image's plan says %u", (unsigned)top, (unsigned)img->config.planned_linear);
    return fail(e, EF_E_IMAGE, 0, msg);
  }
  c->linear = (uint32_t)top;
  c->context = img->config.ctx;
  c->text_bytes = img->config.text_bytes;
  c->has_chat_token = ef_app_has(app, "chat_token");
  c->ready = 1;
  return 0;
}

int ef_chat_begin(ef_chat *c, const ef_chat_settings *s, const uint8_t *prompt, uint32_t len, uint32_t *prompt_tokens, ef_chat_error *e) {
  uint32_t a[3];
  int32_t n;
  char msg[200];
  if (!c->ready) return fail(e, EF_E_NO_IMAGE, 0, "no model is loaded");
  c->running = 0;
  c->sampled = 0;
  if (s->mode == 0) {
    /* generate: run.c's generate (generateInApp): a new sequence each time */
    c->open = 0;
    if (len > c->text_bytes) {
      snprintf(msg, sizeof msg, "the prompt is %u bytes; the device's prompt buffer holds %u", (unsigned)len, (unsigned)c->text_bytes);
      return fail(e, EF_E_PROMPT_TOO_LONG, c->text_bytes, msg);
    }
    if (sampler(c, s->temperature, s->top_p, s->seed, e) || put_text(c, prompt, len, e)) return -1;
    /* tokenize first: a prompt that fills the context is refused before any prefill */
    a[0] = len; a[1] = 1; a[2] = 0;
    if (call_i(c, "tok_encode", 3, a, &n, e)) return -1;
    if (n < 0) return fail(e, EF_E_INTERNAL, 0, "the app has no tokenizer");
    if ((uint32_t)n >= c->context) {
      snprintf(msg, sizeof msg, "the prompt is %d tokens; the context holds %u and must keep one for the reply", (int)n, (unsigned)c->context);
      return fail(e, EF_E_PROMPT_TOO_LONG, c->context, msg);
    }
    if (put_text(c, prompt, len, e)) return -1;
    a[0] = len; a[1] = s->steps;
    if (call_i(c, "gen_begin", 2, a, &n, e)) return -1;
    if (n < 0) { snprintf(msg, sizeof msg, "gen_begin failed (code %d)", (int)n); return fail(e, EF_E_INTERNAL, 0, msg); }
    c->mode = 0;
    c->prompt_tokens = (uint32_t)n;
    /* the prompt's own pieces come first (as run prints them), then sampled ones */
    {
      uint32_t steps = s->steps == 0 || s->steps > c->context ? c->context : s->steps;
      c->forced = (uint32_t)n - 1 < steps ? (uint32_t)n - 1 : steps;
    }
    c->pieces = 0;
    c->running = 1;
    *prompt_tokens = (uint32_t)n;
    return 0;
  }
  /* a chat turn: the Llama 2 template, one conversation across turns (run -m chat) */
  if (len + EF_CHAT_TEMPLATE_BYTES > c->text_bytes) {
    snprintf(msg, sizeof msg, "the prompt is %u bytes; the device's prompt buffer takes %u with the chat template", (unsigned)len, (unsigned)(c->text_bytes - EF_CHAT_TEMPLATE_BYTES));
    return fail(e, EF_E_PROMPT_TOO_LONG, c->text_bytes - EF_CHAT_TEMPLATE_BYTES, msg);
  }
  if (s->new_conversation || !c->open) {
    if (sampler(c, s->temperature, s->top_p, s->seed, e)) return -1;
    a[0] = s->steps;
    if (call_i(c, "chat_reset", 1, a, 0, e)) return -1;
    c->conv_steps = s->steps;
    c->open = 1;
  } else {
    /* a later turn keeps the conversation's generator (run -m chat samples on from one seed) */
    ef_val st;
    char err[200];
    if (ef_app_callv(c->app, "sampler_state", 0, 0, &st, err, sizeof err)) return fail(e, EF_E_TRAP, 0, err);
    if (sampler(c, s->temperature, s->top_p, st.v.I, e)) return -1;
  }
  a[0] = 0; a[1] = len; a[2] = 0;
  if (put_text(c, prompt, len, e) || call_i(c, "chat_turn", 3, a, &n, e)) return -1;
  if (n == EF_CHAT_CONTEXT_FULL) {
    int32_t used;
    if (call_i(c, "chat_pos", 0, 0, &used, e)) return -1;
    if (used > 0) {
      /* the turns so far fill the conversation: a new one, as run -m chat starts */
      a[0] = c->conv_steps;
      if (call_i(c, "chat_reset", 1, a, 0, e)) return -1;
      a[0] = 0; a[1] = len; a[2] = 0;
      if (put_text(c, prompt, len, e) || call_i(c, "chat_turn", 3, a, &n, e)) return -1;
    }
  }
  if (n == EF_CHAT_CONTEXT_FULL) {
    uint32_t ctx = c->conv_steps == 0 || c->conv_steps > c->context ? c->context : c->conv_steps;
    snprintf(msg, sizeof msg, "the prompt does not fit a conversation of %u positions with one left for the reply", (unsigned)ctx);
    return fail(e, EF_E_PROMPT_TOO_LONG, ctx, msg);
  }
  if (n == EF_CHAT_TOO_LONG) return fail(e, EF_E_PROMPT_TOO_LONG, c->text_bytes - EF_CHAT_TEMPLATE_BYTES, "the prompt is longer than the device's prompt buffer");
  if (n < 0) { snprintf(msg, sizeof msg, "chat_turn failed (code %d)", (int)n); return fail(e, EF_E_INTERNAL, 0, msg); }
  c->mode = 1;
  c->prompt_tokens = (uint32_t)n;
  c->running = 1;
  *prompt_tokens = (uint32_t)n;
  return 0;
}

/* The piece the last call left at tok_piece(). */
static int piece(ef_chat *c, int32_t n, const uint8_t **text, ef_chat_error *e) {
  int32_t at;
  if (call_i(c, "tok_piece", 0, 0, &at, e)) return -1;
  if (!(*text = ef_app_guest(c->app, (uint32_t)at, (uint32_t)n))) return fail(e, EF_E_INTERNAL, 0, "chat: the piece is outside linear memory");
  return 0;
}

int ef_chat_step(ef_chat *c, const uint8_t **text, uint32_t *len, uint32_t *token, int *sampled, int *reason, ef_chat_error *e) {
  int32_t r, id = -1;
  if (!c->running) { *reason = EF_END_STEPS; return 0; }
  if (c->mode == 0) {
    if (call_i(c, "gen_next", 0, 0, &r, e)) { c->running = 0; return -1; }
    if (r >= 0) {
      if (piece(c, r, text, e) || call_i(c, "gen_token", 0, 0, &id, e)) { c->running = 0; return -1; }
      *len = (uint32_t)r;
      *token = (uint32_t)id;
      *sampled = c->pieces >= c->forced;
      c->pieces++;
      if (*sampled) c->sampled++;
      return 1;
    }
  } else {
    for (;;) {
      if (call_i(c, "chat_next", 0, 0, &r, e)) { c->running = 0; c->open = 0; return -1; }
      if (r < 0) break;
      /* 0: a prompt position (or a piece with no bytes, which run -m chat does not print either) */
      if (r == 0) return 2;
      if (piece(c, r, text, e)) { c->running = 0; return -1; }
      if (c->has_chat_token && call_i(c, "chat_token", 0, 0, &id, e)) { c->running = 0; return -1; }
      *len = (uint32_t)r;
      *token = (uint32_t)id;
      *sampled = 1;
      c->sampled++;
      return 1;
    }
  }
  c->running = 0;
  switch (r) {
    case EF_CHAT_END_TEXT: *reason = EF_END_TEXT_REASON; return 0;
    case EF_CHAT_REPLY_LIMIT: *reason = EF_END_STEPS; return 0;
    case EF_CHAT_CONTEXT_END: *reason = c->mode == 0 ? EF_END_STEPS : EF_END_CONTEXT; return 0;
    default:
      if (c->mode == 1) c->open = 0;
      return fail(e, EF_E_INTERNAL, 0, c->mode == 0 ? "gen_next failed: the model could not step" : "chat_next failed: the model could not step");
  }
}

int ef_chat_self_test(ef_chat *c, uint32_t tokens, ef_chat_error *e) {
  ef_chat_settings s;
  uint32_t np, i, len, token;
  const uint8_t *text;
  int sampled, reason = EF_END_STEPS, r;
  memset(&s, 0, sizeof s);
  s.seed = 1;
  s.steps = tokens + 1;
  if (ef_chat_begin(c, &s, (const uint8_t *)"", 0, &np, e)) return -1;
  for (i = 0; i <= tokens; i++) {
    r = ef_chat_step(c, &text, &len, &token, &sampled, &reason, e);
    if (r < 0) return -1;
    if (r == 0) break;
  }
  if (c->sampled == 0 && reason != EF_END_TEXT_REASON) return fail(e, EF_E_INTERNAL, 0, "self-test: the model produced no token");
  c->running = 0;
  return 0;
}
