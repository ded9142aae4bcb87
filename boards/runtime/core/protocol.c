#include "protocol.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t rx_buf[EF_COBS_MAX(EF_MAX_FRAME)];
static uint8_t body_buf[EF_MAX_FRAME];
static uint8_t tx_buf[EF_COBS_MAX(EF_MAX_FRAME) + 1];
static uint8_t pay[EF_MAX_FRAME];

enum { UNDECIDED = 0, FRAMED = 1, TERMINAL = 2 };

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void out(ef_proto *p, const void *b, uint32_t n) { if (n) p->write(p->write_ctx, (const uint8_t *)b, n); }
static void text(ef_proto *p, const char *s) { out(p, s, (uint32_t)strlen(s)); }

/* The device never sends a body larger than the host's max_frame (nor its own). */
static void send(ef_proto *p, uint8_t type, uint8_t seq, const uint8_t *payload, uint32_t len) {
  uint32_t limit = p->host_max_frame < EF_MAX_FRAME ? p->host_max_frame : EF_MAX_FRAME, n;
  if (len + 6 > limit) len = limit - 6;
  if (!p->delim_sent) { out(p, "", 1); p->delim_sent = 1; }  /* ends whatever text the host saw */
  n = ef_frame_encode(type, seq, payload, len, body_buf, tx_buf, sizeof tx_buf);
  out(p, tx_buf, n);
}

static void send_error(ef_proto *p, uint8_t req, uint8_t seq, uint16_t code, uint32_t arg, const char *msg) {
  uint8_t e[7 + 200];
  uint32_t m = (uint32_t)strlen(msg);
  if (m > 200) m = 200;
  e[0] = req;
  put16(e + 1, code);
  put32(e + 3, arg);
  memcpy(e + 7, msg, m);
  send(p, EF_T_ERROR, seq, e, 7 + m);
}

static uint8_t wire_state(const ef_proto *p, int slot) {
  const ef_slots *s = p->slots;
  uint8_t st = s->rec.slot[slot].state;
  /* the record's state, refined for the upload in progress (written, verified live in RAM) */
  if (st == EF_SLOT_RECEIVING && s->up_slot == slot) return s->up_verified ? EF_SLOT_VERIFIED : s->up_next == s->rec.slot[slot].size ? EF_SLOT_WRITTEN : EF_SLOT_RECEIVING;
  return st;
}

static void banner_text(ef_proto *p) {
  char b[160];
  snprintf(b, sizeof b, "edge-flash %s on %s: type a prompt, /help for commands\r\n> ", EF_RUNTIME_VERSION, p->board_name);
  text(p, b);
}

/* Undecided: the banner, then a 0x00 where a framed host's receiver starts (terminal mode never sends one). */
static void banner(ef_proto *p) {
  banner_text(p);
  out(p, "", 1);
}

/* A reply that streams stops with no STATS and no stats line: its reader is gone (BYE, a person took
 * the line, the port saw the peer leave). A chat turn cut short ends its conversation. */
static void reply_drop(ef_proto *p) {
  if (!p->busy) return;
  p->busy = 0;
  p->chat.running = 0;
  p->chat.open = 0;
}

/* Undecided again, as after a start: a framed session ended. */
static void undecided(ef_proto *p) {
  reply_drop(p);
  p->mode = UNDECIDED;
  p->person = 0;
  ef_rx_unsync(&p->rx);
  p->line_n = 0;
  banner(p);
}

static void log_app(void *ctx, const char *t, uint32_t len) {
  ef_proto *p = (ef_proto *)ctx;
  if (p->mode == FRAMED) {
    uint8_t l[256];
    if (len > sizeof l - 1) len = sizeof l - 1;
    l[0] = 2;
    memcpy(l + 1, t, len);
    send(p, EF_T_LOG, 0, l, len + 1);
  }
}

/* The model of the booted image: model_init from its descriptor. An app that is no model (no
 * model_init export: a test app) serves no CHAT and is not asked to infer. */
static int model_up(ef_proto *p) {
  p->chat_ready = 0;
  memset(&p->chat_why, 0, sizeof p->chat_why);
  if (!ef_app_has(p->app, "model_init")) {
    p->chat_why.code = EF_E_IMAGE;
    snprintf(p->chat_why.msg, sizeof p->chat_why.msg, "the image's app is not a model (it has no model_init)");
    return 0;
  }
  if (!ef_chat_descriptor(&p->img)) {
    p->chat_why.code = EF_E_IMAGE;
    snprintf(p->chat_why.msg, sizeof p->chat_why.msg, "the image has no descriptor section for model_init: pack it again with this edge-flash");
    return 0;
  }
  if (ef_chat_init(&p->chat, p->app, &p->img, &p->chat_why)) return -1;
  p->chat_ready = 1;
  return 0;
}

/* The booted image's app, its linear memory capped at the board's where the port says (linear_max). */
static ef_app *load_app(ef_proto *p, char *err, uint32_t err_cap) {
  ef_app *a = ef_app_load(&p->img, p->stack_bytes, log_app, p, err, err_cap);
  if (a && p->linear_max) ef_app_limit_memory(a, p->linear_max);
  return a;
}

/* After a trap the app's state is not to be trusted: load it again from the image (wasm3 allocates
 * as at boot), model_init again. */
static void recover(ef_proto *p) {
  char err[200];
  ef_app_unload(p->app);
  p->app = load_app(p, err, sizeof err);
  p->chat_ready = 0;
  if (!p->app) {
    p->chat_why.code = EF_E_TRAP;
    snprintf(p->chat_why.msg, sizeof p->chat_why.msg, "the app did not load again after a trap: %.150s", err);
    return;
  }
  model_up(p);
}

void ef_proto_start(ef_proto *p) {
  char err[200];
  int slot = -1;
  ef_rx_init(&p->rx, rx_buf, EF_MAX_FRAME);
  p->mode = UNDECIDED;
  p->host_max_frame = EF_MIN_MAX_FRAME;
  p->booted = -1;
  p->committed = -1;
  p->reset = 0;
  p->line_n = 0;
  p->last_cr = 0;
  p->term_fresh = 0;
  p->person = 0;
  p->quiet_us = p->now_us ? p->now_us() : 0;
  p->busy = 0;
  p->term_new = 1;
  p->chat_ready = 0;
  p->last_tps_x1000 = 0;
  if (p->temperature == 0 && p->top_p == 0) { p->temperature = 1.0f; p->top_p = 0.9f; p->steps = 256; p->seed = 0; }
  if (p->app) { ef_app_unload(p->app); p->app = 0; }
  if (ef_slots_boot(p->slots, p->opts, &slot, &p->img) == EF_SLOTS_OK) {
    int pending = p->slots->rec.slot[slot].state == EF_SLOT_PENDING;
    p->booted = slot;
    p->app = load_app(p, err, sizeof err);
    /* the self-test: the app loads, links and starts within its plan's memory; a model's model_init
     * takes the image's descriptor and a pending image infers a few tokens */
    if (p->app && model_up(p)) snprintf(err, sizeof err, "%s", p->chat_why.msg);
    else if (p->app && pending && p->chat_ready && ef_chat_self_test(&p->chat, p->self_test_tokens ? p->self_test_tokens : 4, &p->chat_why)) {
      snprintf(err, sizeof err, "inference: %.180s", p->chat_why.msg);
      p->chat_ready = 0;
    } else if (p->app) err[0] = 0;
    if (!p->app || (pending && err[0])) {
      if (pending) ef_slots_rollback(p->slots);
      if (p->app) { ef_app_unload(p->app); p->app = 0; }
      p->booted = -1;
      text(p, "self-test failed: ");
      text(p, err);
      text(p, pending ? " (rolled back: the previous image boots at the next start)\r\n" : "\r\n");
    } else if (pending) {
      ef_slots_confirm(p->slots);
    }
  }
  banner(p);
}

void ef_proto_hangup(ef_proto *p) { undecided(p); }

static uint32_t info(ef_proto *p, uint8_t *b) {
  const ef_slots *s = p->slots;
  uint32_t n = 108;
  const char *strs[3];
  int i;
  memset(b, 0, 108);
  put16(b, EF_PROTOCOL_VERSION);
  put16(b + 2, p->opts->board_id);
  put32(b + 4, EF_MAX_FRAME);
  put32(b + 8, (uint32_t)p->opts->capacity);
  put32(b + 12, s->st->erase_block);
  put32(b + 16, p->heap_free ? p->heap_free() : 0);
  put32(b + 20, p->heap_largest ? p->heap_largest() : 0);
  put32(b + 24, p->app ? ef_app_memory(p->app) : 0);
  put32(b + 28, p->last_tps_x1000);
  b[32] = p->booted < 0 ? 0xFF : (uint8_t)p->booted;
  b[33] = wire_state(p, 0);
  b[34] = wire_state(p, 1);
  b[35] = (uint8_t)((p->app ? 1 : 0) | (p->booted >= 0 && s->rec.slot[p->booted].state == EF_SLOT_PENDING ? 2 : 0));
  if (p->booted >= 0) memcpy(b + 36, s->rec.slot[p->booted].sha256, 32);
  if (s->up_slot >= 0) {
    memcpy(b + 68, s->rec.slot[s->up_slot].sha256, 32);
    put32(b + 100, s->rec.slot[s->up_slot].size);
    put32(b + 104, s->up_next);
  }
  strs[0] = EF_RUNTIME_VERSION; strs[1] = EF_WASM3_VERSION; strs[2] = p->board_name;
  for (i = 0; i < 3; i++) {
    uint32_t l = (uint32_t)strlen(strs[i]);
    if (l > 64) l = 64;
    b[n++] = (uint8_t)l;
    memcpy(b + n, strs[i], l);
    n += l;
  }
  return n;
}

/* Replies ------------------------------------------------------------------------------------ */

static uint64_t now(ef_proto *p) { return p->now_us ? p->now_us() : 0; }

static uint32_t heap_free_now(ef_proto *p) { return p->heap_free ? p->heap_free() : 0; }

/* Why a prompt cannot be served now (0: it can). */
static int chat_unavailable(ef_proto *p, ef_chat_error *e) {
  if (!p->app) { e->code = EF_E_NO_IMAGE; e->arg = 0; snprintf(e->msg, sizeof e->msg, "no image is running: flash one (edge-flash flash)"); return 1; }
  if (!p->chat_ready) { *e = p->chat_why; if (!e->code) e->code = EF_E_INTERNAL; return 1; }
  return 0;
}

/* Seed 0: the device picks one, as run -s 0 takes the time. */
static uint32_t pick_seed(ef_proto *p, uint32_t seed) {
  uint64_t t;
  if (seed) return seed;
  t = now(p) ^ ((uint64_t)p->last_tps_x1000 << 20);
  seed = (uint32_t)(t ^ (t >> 32));
  return seed ? seed : 1;
}

/* Starts a reply; 0, or -1 with e (the runtime recovered from a trap). */
static int reply_begin(ef_proto *p, const ef_chat_settings *s, const uint8_t *prompt, uint32_t len, uint32_t *np, ef_chat_error *e) {
  p->t_start = now(p);
  p->t_first = p->t_last = 0;
  if (chat_unavailable(p, e)) return -1;
  if (ef_chat_begin(&p->chat, s, prompt, len, np, e)) {
    if (e->code == EF_E_TRAP) recover(p);
    return -1;
  }
  return 0;
}

static void stats_line(ef_proto *p, int reason);

/* The reply's end: STATS (framed) or the stats line (terminal); tok/s of the sampled tokens. */
static void reply_end(ef_proto *p, int reason) {
  uint32_t n = p->chat.sampled, decode_us = (uint32_t)(p->t_last - p->t_first), prefill_us;
  uint64_t end = p->t_first ? p->t_first : now(p);
  prefill_us = (uint32_t)(end - p->t_start);
  p->last_tps_x1000 = n > 1 && decode_us > 0 ? (uint32_t)(((uint64_t)(n - 1) * 1000000000ull + decode_us / 2) / decode_us) : 0;
  if (p->busy == 1) {
    uint8_t b[26];
    memset(b, 0, sizeof b);
    b[0] = (uint8_t)reason;
    put16(b + 2, p->chat.prompt_tokens > 0xFFFF ? 0xFFFF : p->chat.prompt_tokens);
    put16(b + 4, n > 0xFFFF ? 0xFFFF : n);
    put32(b + 6, prefill_us);
    put32(b + 10, n ? decode_us : 0);
    put32(b + 14, p->app ? ef_app_memory(p->app) : 0);
    put32(b + 18, heap_free_now(p));
    put32(b + 22, p->heap_largest ? p->heap_largest() : 0);
    send(p, EF_T_STATS, p->chat_seq, b, 26);
  } else if (p->busy == 2) {
    stats_line(p, reason);
  }
  p->busy = 0;
  p->chat.running = 0;
}

static void term_piece(ef_proto *p, const uint8_t *t, uint32_t n);

void ef_proto_step(ef_proto *p) {
  const uint8_t *t;
  uint32_t len, token;
  int sampled, reason = EF_END_STEPS, r;
  ef_chat_error e;
  if (!p->busy) return;
  r = ef_chat_step(&p->chat, &t, &len, &token, &sampled, &reason, &e);
  if (r == 2) return;
  if (r == 1) {
    if (sampled) {
      p->t_last = now(p);
      if (!p->t_first) p->t_first = p->t_last;
    }
    if (p->busy == 1) {
      /* one TOKEN frame, or several with the same id when the piece is longer than a frame */
      uint32_t room = (p->host_max_frame < EF_MAX_FRAME ? p->host_max_frame : EF_MAX_FRAME) - 10, o = 0;
      do {
        uint32_t k = len - o < room ? len - o : room;
        put32(pay, token);
        memcpy(pay + 4, t + o, k);
        send(p, EF_T_TOKEN, p->chat_seq, pay, 4 + k);
        o += k;
      } while (o < len);
    } else term_piece(p, t, len);
    return;
  }
  if (r < 0) {
    if (p->busy == 1) send_error(p, EF_T_CHAT, p->chat_seq, e.code, e.arg, e.msg);
    else { text(p, "\r\nerror: "); text(p, e.msg); }
    reply_end(p, EF_END_FAILED);
    if (e.code == EF_E_TRAP) recover(p);
    return;
  }
  reply_end(p, reason);
}

int ef_proto_busy(const ef_proto *p) { return p->busy != 0; }

/* CANCEL or Ctrl-C: the reply stops at this token boundary; a cancelled chat turn ends its
 * conversation (the app is mid-turn), so the next prompt starts a new one. */
static void reply_cancel(ef_proto *p) {
  if (p->chat.mode == 1) p->chat.open = 0;
  reply_end(p, EF_END_CANCELLED);
}

static void frame(ef_proto *p, const ef_frame *f) {
  ef_slots *s = p->slots;
  uint8_t r[40] = {0};  /* RESET replies with none of it: gcc cannot see that a 0-length send reads nothing */
  char msg[256];
  ef_slots_err e;
  if (p->busy && f->type != EF_T_CANCEL && f->type != EF_T_HELLO && f->type != EF_T_INFO && f->type != EF_T_BYE) {
    send_error(p, f->type, f->seq, EF_E_BUSY, 0, "a reply is streaming: CANCEL it first");
    return;
  }
  switch (f->type) {
    case EF_T_HELLO:
      if (get16(f->payload) != EF_PROTOCOL_VERSION) { send_error(p, f->type, f->seq, EF_E_VERSION, EF_PROTOCOL_VERSION, "this device speaks protocol version 1"); return; }
      p->host_max_frame = get16(f->payload + 2) < EF_MIN_MAX_FRAME ? EF_MIN_MAX_FRAME : get16(f->payload + 2);
      put16(r, EF_PROTOCOL_VERSION); put16(r + 2, p->opts->board_id); put32(r + 4, EF_MAX_FRAME);
      send(p, EF_T_REPLY | f->type, f->seq, r, 8);
      return;
    case EF_T_INFO:
      send(p, EF_T_REPLY | f->type, f->seq, pay, info(p, pay));
      return;
    case EF_T_BYE:
      /* the host leaves: a reply that streams stops, the reply, then undecided and the banner for a person */
      reply_drop(p);
      send(p, EF_T_REPLY | f->type, f->seq, r, 0);
      undecided(p);
      return;
    case EF_T_UPLOAD_BEGIN: {
      uint32_t size = get32(f->payload), next = 0;
      if (size < 56) { send_error(p, f->type, f->seq, EF_E_BAD_SIZE, 56, "image_size is smaller than an image's header and digest"); return; }
      if (size > p->opts->capacity || size > s->slot_size) {
        snprintf(msg, sizeof msg, "the image is %u bytes, a slot holds %u", (unsigned)size, (unsigned)p->opts->capacity);
        send_error(p, f->type, f->seq, EF_E_TOO_LARGE, (uint32_t)p->opts->capacity, msg);
        return;
      }
      p->committed = -1;
      if ((e = ef_slots_upload_begin(s, size, f->payload + 4, &next))) { send_error(p, f->type, f->seq, EF_E_STORAGE, 0, "the slot record could not be written"); return; }
      put32(r, next); put32(r + 4, EF_MAX_FRAME - 10); put16(r + 8, EF_UPLOAD_WINDOW);
      send(p, EF_T_REPLY | f->type, f->seq, r, 10);
      return;
    }
    case EF_T_UPLOAD_CHUNK: {
      uint32_t off = get32(f->payload), n = f->len - 4, size;
      if (s->up_slot < 0) { send_error(p, f->type, f->seq, EF_E_NO_UPLOAD, 0, "no upload: send UPLOAD_BEGIN first"); return; }
      size = s->rec.slot[s->up_slot].size;
      if ((uint64_t)off + n > size) { send_error(p, f->type, f->seq, EF_E_BAD_OFFSET, size, "the chunk ends past the image"); return; }
      /* go-back-N: only the expected offset is written; repeats and chunks after a gap are acknowledged */
      if (off == s->up_next && (e = ef_slots_upload_write(s, off, f->payload + 4, n))) {
        send_error(p, f->type, f->seq, EF_E_STORAGE, ef_slots_offset(s, s->up_slot) + off, "storage: erase or write failed");
        return;
      }
      put32(r, off); put32(r + 4, s->up_next);
      send(p, EF_T_REPLY | f->type, f->seq, r, 8);
      return;
    }
    case EF_T_VERIFY: {
      uint8_t sha[32];
      msg[0] = 0;
      e = ef_slots_upload_verify(s, p->opts, sha, msg, sizeof msg);
      if (e == EF_SLOTS_NO_UPLOAD) send_error(p, f->type, f->seq, EF_E_NO_UPLOAD, 0, "no upload to verify");
      else if (e == EF_SLOTS_INCOMPLETE) send_error(p, f->type, f->seq, EF_E_INCOMPLETE, s->up_next, "the upload is not complete");
      else if (e == EF_SLOTS_IMAGE) send_error(p, f->type, f->seq, EF_E_IMAGE, 0, msg);
      else if (e == EF_SLOTS_HASH) send_error(p, f->type, f->seq, EF_E_SHA_MISMATCH, 0, "the SHA-256 of what storage holds differs from UPLOAD_BEGIN's");
      else if (e) send_error(p, f->type, f->seq, EF_E_STORAGE, 0, "storage: read failed");
      else {
        put32(r, s->rec.slot[s->up_slot].size);
        memcpy(r + 4, sha, 32);
        send(p, EF_T_REPLY | f->type, f->seq, r, 36);
      }
      return;
    }
    case EF_T_COMMIT: {
      int slot = s->up_slot;
      if (slot < 0 && p->committed >= 0 && s->rec.active == p->committed && s->rec.slot[p->committed].state == EF_SLOT_PENDING) {
        /* the same COMMIT again (its reply was lost): the slot it made pending, nothing written */
        r[0] = (uint8_t)p->committed;
        send(p, EF_T_REPLY | f->type, f->seq, r, 1);
        return;
      }
      e = ef_slots_commit(s);
      if (!e) p->committed = slot;
      if (e == EF_SLOTS_NO_UPLOAD) send_error(p, f->type, f->seq, EF_E_NO_UPLOAD, 0, "no upload to commit");
      else if (e == EF_SLOTS_NOT_VERIFIED) send_error(p, f->type, f->seq, EF_E_NOT_VERIFIED, 0, "VERIFY has not passed for this upload");
      else if (e) send_error(p, f->type, f->seq, EF_E_STORAGE, 0, "the slot record could not be written");
      else { r[0] = (uint8_t)slot; send(p, EF_T_REPLY | f->type, f->seq, r, 1); }
      return;
    }
    case EF_T_CONFIRM:
      if (p->booted < 0) { send_error(p, f->type, f->seq, EF_E_NO_IMAGE, 0, "no image is running"); return; }
      if (s->rec.slot[p->booted].state == EF_SLOT_PENDING && ef_slots_confirm(s)) { send_error(p, f->type, f->seq, EF_E_STORAGE, 0, "the slot record could not be written"); return; }
      r[0] = (uint8_t)p->booted;
      send(p, EF_T_REPLY | f->type, f->seq, r, 1);
      return;
    case EF_T_ROLLBACK:
      e = ef_slots_rollback_to_previous(s);
      if (e == EF_SLOTS_NO_IMAGE) send_error(p, f->type, f->seq, EF_E_NO_PREVIOUS, 0, "no other valid image to roll back to");
      else if (e) send_error(p, f->type, f->seq, EF_E_STORAGE, 0, "the slot record could not be written");
      else { r[0] = s->rec.active; send(p, EF_T_REPLY | f->type, f->seq, r, 1); }
      return;
    case EF_T_RESET:
      send(p, EF_T_REPLY | f->type, f->seq, r, 0);
      p->reset = 1;
      return;
    case EF_T_CHAT: {
      ef_chat_settings cs;
      ef_chat_error ce;
      uint32_t np = 0;
      float t, tp;
      memcpy(&t, f->payload + 4, 4);
      memcpy(&tp, f->payload + 8, 4);
      if (!(t >= 0 && t <= 3.4e38f) || !(tp >= 0 && tp <= 1) || f->payload[14] > 1 || (f->payload[15] & ~1u)) {
        send_error(p, f->type, f->seq, EF_E_BAD_SETTINGS, 0, "temperature >= 0, top_p in [0, 1], mode 0 or 1, flags bit 0 only");
        return;
      }
      memset(&cs, 0, sizeof cs);
      cs.seed = pick_seed(p, get32(f->payload));
      cs.temperature = t;
      cs.top_p = tp;
      cs.steps = get16(f->payload + 12);
      cs.mode = f->payload[14];
      cs.new_conversation = f->payload[15] & 1;
      if (reply_begin(p, &cs, f->payload + 16, f->len - 16, &np, &ce)) {
        send_error(p, f->type, f->seq, ce.code, ce.arg, ce.msg);
        return;
      }
      put16(r, np > 0xFFFF ? 0xFFFF : np);
      put16(r + 2, p->chat.context > 0xFFFF ? 0xFFFF : p->chat.context);
      p->busy = 1;
      p->chat_seq = f->seq;
      send(p, EF_T_REPLY | f->type, f->seq, r, 4);
      return;
    }
    case EF_T_CANCEL:
      r[0] = p->busy == 1;
      if (p->busy == 1) reply_cancel(p);
      send(p, EF_T_REPLY | f->type, f->seq, r, 1);
      return;
    default:
      send_error(p, f->type, f->seq, EF_E_INTERNAL, 0, "a receivable type without a handler");
  }
}

static void framed_byte(ef_proto *p, uint8_t b) {
  ef_frame f;
  ef_rx_result r = ef_rx_byte(&p->rx, b, &f);
  if (r == EF_RX_FRAME) frame(p, &f);
  else if (r == EF_RX_ERROR) {
    static const char *const M[6] = {"", "bad frame: COBS decoding failed or the body is shorter than 6 bytes", "bad CRC-32", "unknown frame type", "payload length outside the type's range", "frame larger than max_frame"};
    send_error(p, p->rx.err_type, p->rx.err_seq, p->rx.err_code, p->rx.err_arg, p->rx.err_code <= 5 ? M[p->rx.err_code] : "");
  }
}

/* Terminal mode ------------------------------------------------------------------------------- */

static void term_prompt(ef_proto *p) { text(p, "> "); }

/* A piece of the reply as a terminal shows it: \n becomes \r\n (raw mode prints no carriage return). */
static void term_piece(ef_proto *p, const uint8_t *t, uint32_t n) {
  uint32_t i, from = 0;
  for (i = 0; i < n; i++) {
    if (t[i] != '\n') continue;
    out(p, t + from, i - from);
    text(p, "\r\n");
    from = i + 1;
  }
  out(p, t + from, n - from);
}

/* `[<tokens> tokens, <tok/s> tok/s, linear memory <KiB> KiB, heap free <KiB> KiB]` and the prompt. */
static void stats_line(ef_proto *p, int reason) {
  static const char *const WHY[5] = {"", "", ", cancelled", ", context full: the next line starts a new conversation", ", error"};
  char b[200];
  uint32_t tps = p->last_tps_x1000;
  snprintf(b, sizeof b, "\r\n[%u tokens, %u.%u tok/s, linear memory %u KiB, heap free %u KiB%s]\r\n", (unsigned)p->chat.sampled,
           (unsigned)(tps / 1000), (unsigned)(tps % 1000 / 100), (unsigned)((p->app ? ef_app_memory(p->app) : 0) / 1024),
           (unsigned)(heap_free_now(p) / 1024), reason >= 0 && reason <= 4 ? WHY[reason] : "");
  text(p, b);
  if (reason == EF_END_CONTEXT) p->term_new = 1;
  term_prompt(p);
}

static void term_info(ef_proto *p) {
  char b[200];
  int i;
  const ef_slots *s = p->slots;
  static const char *const ST[EF_SLOT_STATE_COUNT] = EF_SLOT_NAMES;
  snprintf(b, sizeof b, "board: %s (id %u)\r\nruntime: %s\r\nwasm3: %s\r\n", p->board_name, (unsigned)p->opts->board_id, EF_RUNTIME_VERSION, EF_WASM3_VERSION);
  text(p, b);
  if (p->heap_largest) snprintf(b, sizeof b, "heap free: %u bytes, largest block %u bytes\r\n", (unsigned)(p->heap_free ? p->heap_free() : 0), (unsigned)p->heap_largest());
  else snprintf(b, sizeof b, "heap free: %u bytes, largest block unknown on this port\r\n", (unsigned)(p->heap_free ? p->heap_free() : 0));
  text(p, b);
  snprintf(b, sizeof b, "slot A: %s, slot B: %s, booted: %s\r\n", ST[wire_state(p, 0)], ST[wire_state(p, 1)], p->booted < 0 ? "none" : p->booted ? "B" : "A");
  text(p, b);
  text(p, "image sha256: ");
  if (p->booted >= 0) {
    for (i = 0; i < 32; i++) { snprintf(b, 3, "%02x", s->rec.slot[p->booted].sha256[i]); text(p, b); }
  } else text(p, "none");
  snprintf(b, sizeof b, "\r\nlinear memory: %u bytes\r\nlast reply: %u.%03u tok/s\r\n", (unsigned)(p->app ? ef_app_memory(p->app) : 0), (unsigned)(p->last_tps_x1000 / 1000), (unsigned)(p->last_tps_x1000 % 1000));
  text(p, b);
}

static int number(const char *s, double *v) {
  char *end;
  if (!*s) return 0;
  *v = strtod(s, &end);
  return *end == 0 && *v == *v;
}

static void term_line(ef_proto *p) {
  char *l = p->line, b[160];
  double v;
  int fresh = p->term_fresh;
  p->term_fresh = 0;
  p->line[p->line_n] = 0;
  text(p, "\r\n");
  if (l[0] != '/') {
    ef_chat_settings cs;
    ef_chat_error ce;
    uint32_t np;
    if (p->line_n == 0) {
      /* Enter on a line that was undecided (a person's first key) shows the banner again */
      if (fresh) banner_text(p);
      else term_prompt(p);
      return;
    }
    /* terminal mode serves chat turns: one conversation until /new */
    memset(&cs, 0, sizeof cs);
    cs.seed = pick_seed(p, p->seed);
    cs.temperature = p->temperature;
    cs.top_p = p->top_p;
    cs.steps = p->steps;
    cs.mode = 1;
    cs.new_conversation = p->term_new;
    if (reply_begin(p, &cs, (const uint8_t *)l, p->line_n, &np, &ce)) {
      text(p, "error: "); text(p, ce.msg); text(p, "\r\n");
    } else {
      p->term_new = 0;
      p->busy = 2;
      return;   /* the reply streams from ef_proto_step, then the stats line and the prompt */
    }
  } else if (!strcmp(l, "/help")) {
    text(p, "/help  this list\r\n/info  board, versions, memory, slots, image, tok/s\r\n/reset  restart the runtime\r\n"
            "/temp T  temperature (0 = greedy)\r\n/topp P  top-p in [0, 1]\r\n/seed N  seed of the next conversation (0 = the device picks)\r\n"
            "/steps N  positions per reply (0 = context)\r\n/new  a new conversation\r\n");
  } else if (!strcmp(l, "/info")) {
    term_info(p);
  } else if (!strcmp(l, "/reset")) {
    p->reset = 1;
    return;
  } else if (!strcmp(l, "/new")) {
    p->term_new = 1;
    text(p, "new conversation\r\n");
  } else if (!strncmp(l, "/temp ", 6) && number(l + 6, &v) && v >= 0 && v < 1e30) {
    p->temperature = (float)v;
    snprintf(b, sizeof b, "temperature %g\r\n", v); text(p, b);
  } else if (!strncmp(l, "/topp ", 6) && number(l + 6, &v) && v >= 0 && v <= 1) {
    p->top_p = (float)v;
    snprintf(b, sizeof b, "top-p %g\r\n", v); text(p, b);
  } else if (!strncmp(l, "/seed ", 6) && number(l + 6, &v) && v >= 0 && v <= 4294967295.0 && v == (double)(uint32_t)v) {
    p->seed = (uint32_t)v;
    snprintf(b, sizeof b, "seed %u\r\n", (unsigned)p->seed); text(p, b);
  } else if (!strncmp(l, "/steps ", 7) && number(l + 7, &v) && v >= 0 && v <= 65535 && v == (double)(uint32_t)v) {
    p->steps = (uint32_t)v;
    snprintf(b, sizeof b, "steps %u\r\n", (unsigned)p->steps); text(p, b);
  } else {
    snprintf(b, sizeof b, "error: unknown command or bad value: %.60s (/help lists the commands)\r\n", l);
    text(p, b);
  }
  term_prompt(p);
}

static void terminal_byte(ef_proto *p, uint8_t b) {
  if (p->busy == 2) {
    /* while a reply streams only Ctrl-C counts; typed bytes are dropped */
    if (b == 3) { text(p, "^C"); reply_cancel(p); }
    return;
  }
  if (b == '\n' && p->last_cr) { p->last_cr = 0; return; }  /* \r\n counts once */
  p->last_cr = b == '\r';
  if (b == '\r' || b == '\n') { term_line(p); p->line_n = 0; return; }
  if (b == 3) { text(p, "^C\r\n"); p->line_n = 0; term_prompt(p); return; }
  if (b == 8 || b == 0x7F) { if (p->line_n) { p->line_n--; text(p, "\b \b"); } return; }
  if (b < 0x20 || b > 0x7E) return;
  if (p->line_n + 1 >= sizeof p->line) { out(p, "\a", 1); return; }
  p->line[p->line_n++] = (char)b;
  out(p, &b, 1);
}

/* Framed, after an idle line: is this a person typing? 1 when their line ended (Enter or Ctrl-C) and
 * the runtime left framed mode; 0 otherwise (the byte is the framed receiver's too, so a frame that
 * merely began after a pause is not lost). */
static int person_byte(ef_proto *p, uint8_t c) {
  if (c == '\r' || c == '\n' || c == 3) {
    /* a person: terminal mode, the banner they did not see, then their line as if it had been echoed */
    reply_drop(p);
    p->person = 0;
    p->mode = TERMINAL;
    ef_rx_unsync(&p->rx);
    text(p, "\r\n");
    banner_text(p);
    if (c == 3 || p->line_n == 0) { p->line_n = 0; p->last_cr = c == '\r'; return 1; }
    out(p, p->line, p->line_n);
    term_line(p);
    p->line_n = 0;
    p->last_cr = c == '\r';
    return 1;
  }
  if (c == 8 || c == 0x7F) { if (p->line_n) p->line_n--; return 0; }
  if (c >= 0x20 && c <= 0x7E) {
    if (p->line_n + 1 < sizeof p->line) p->line[p->line_n++] = (char)c;
    return 0;
  }
  p->person = 0;   /* a 0x00 or another byte no keyboard sends: framing goes on as before */
  p->line_n = 0;
  return 0;
}

void ef_proto_input(ef_proto *p, const uint8_t *b, uint32_t n) {
  uint32_t i;
  if (!n) return;
  /* the idle rule: a burst after a quiet line that does not start with 0x00 may be a person */
  if (p->mode == FRAMED && p->now_us && b[0] != 0 && p->now_us() - p->quiet_us >= (uint64_t)EF_IDLE_MS * 1000u) {
    p->person = 1;
    p->line_n = 0;
  }
  for (i = 0; i < n && !p->reset; i++) {
    uint8_t c = b[i];
    if (p->mode == FRAMED && p->person && person_byte(p, c)) continue;
    if (p->mode != FRAMED && c == 0) {
      /* a framed host: this 0x00 starts its first frame (a half-typed line is dropped) */
      if (p->busy == 2) { p->busy = 0; p->chat.running = 0; p->chat.open = 0; }  /* a host took over the line */
      p->mode = FRAMED;
      p->person = 0;
      p->delim_sent = 0;
      p->line_n = 0;
      ef_rx_unsync(&p->rx);
    }
    if (p->mode == UNDECIDED) {
      if ((c >= 0x20 && c <= 0x7E) || c == '\r' || c == '\n' || c == 8 || c == 0x7F || c == 3) { p->mode = TERMINAL; p->term_fresh = 1; p->last_cr = 0; }
      else continue;
    }
    if (p->mode == FRAMED) framed_byte(p, c);
    else terminal_byte(p, c);
  }
  /* counted from the end of the work these bytes asked for (an erase, VERIFY): bytes that waited
   * meanwhile were not a quiet line */
  if (p->now_us) p->quiet_us = p->now_us();
}
