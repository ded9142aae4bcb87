#include "slots.h"
#include <stdio.h>
#include <string.h>
#include "crc32.h"

#define REC_MAGIC 0x52534645u /* "EFSR" */
#define REC_VERSION 2         /* 2: the state byte is the protocol's slot state (1 had its own numbers) */
#define REC_BYTES EF_SLOT_RECORD_BYTES

static const char *const CODES[] = {
  "ok", "io", "range", "no_upload", "offset", "incomplete", "image", "hash", "not_verified", "nothing_pending", "no_image",
};
const char *ef_slots_code(ef_slots_err e) { return (unsigned)e < sizeof CODES / sizeof *CODES ? CODES[e] : "unknown"; }

static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

void ef_slot_record_encode(const ef_slot_record *r, uint8_t b[EF_SLOT_RECORD_BYTES]) {
  int i;
  memset(b, 0, REC_BYTES);
  put32(b, REC_MAGIC);
  b[4] = REC_VERSION;
  put32(b + 8, r->seq);
  b[12] = r->active;
  b[13] = r->trial;
  for (i = 0; i < 2; i++) {
    uint8_t *p = b + 16 + 40 * i;
    p[0] = r->slot[i].state;
    put32(p + 4, r->slot[i].size);
    memcpy(p + 8, r->slot[i].sha256, 32);
  }
  put32(b + 96, ef_crc32(0, b, 96));
}

/* The states a record holds (written and verified are RAM-only). */
static int stored_state(uint8_t st) {
  return st == EF_SLOT_EMPTY || st == EF_SLOT_RECEIVING || st == EF_SLOT_PENDING || st == EF_SLOT_CONFIRMED || st == EF_SLOT_INVALID;
}

int ef_slot_record_decode(const uint8_t b[EF_SLOT_RECORD_BYTES], ef_slot_record *r) {
  int i;
  if (get32(b) != REC_MAGIC || b[4] != REC_VERSION || get32(b + 96) != ef_crc32(0, b, 96)) return 0;
  r->seq = get32(b + 8);
  r->active = b[12];
  r->trial = b[13];
  if (r->active > 1 && r->active != EF_NO_SLOT) return 0;
  for (i = 0; i < 2; i++) {
    const uint8_t *p = b + 16 + 40 * i;
    r->slot[i].state = p[0];
    if (!stored_state(p[0])) return 0;
    r->slot[i].size = get32(p + 4);
    memcpy(r->slot[i].sha256, p + 8, 32);
  }
  return 1;
}

uint32_t ef_slots_offset(const ef_slots *s, int slot) {
  return 2 * s->st->erase_block + (uint32_t)slot * s->slot_size;
}

/* The one place the record changes: the next sequence number into the other copy. */
static ef_slots_err store(ef_slots *s) {
  uint8_t b[REC_BYTES];
  uint32_t copy;
  s->rec.seq += 1;
  copy = s->rec.seq & 1;
  ef_slot_record_encode(&s->rec, b);
  if (ef_storage_erase(s->st, copy * s->st->erase_block, s->st->erase_block)) return EF_SLOTS_IO;
  if (ef_storage_write(s->st, copy * s->st->erase_block, b, REC_BYTES)) return EF_SLOTS_IO;
  return EF_SLOTS_OK;
}

ef_slots_err ef_slots_open(ef_slots *s, const ef_storage *st) {
  uint8_t b[REC_BYTES];
  ef_slot_record r[2];
  int ok[2], i;
  memset(s, 0, sizeof *s);
  s->st = st;
  s->up_slot = -1;
  s->booted = -1;
  if (st->erase_block < REC_BYTES || (uint64_t)st->size < 4ull * st->erase_block) return EF_SLOTS_RANGE;
  s->slot_size = (st->size - 2 * st->erase_block) / 2 / st->erase_block * st->erase_block;
  for (i = 0; i < 2; i++) {
    if (ef_storage_read(st, (uint32_t)i * st->erase_block, b, REC_BYTES)) return EF_SLOTS_IO;
    ok[i] = ef_slot_record_decode(b, &r[i]);
  }
  if (ok[0] && ok[1]) s->rec = (int32_t)(r[1].seq - r[0].seq) > 0 ? r[1] : r[0];
  else if (ok[0] || ok[1]) s->rec = ok[0] ? r[0] : r[1];
  else { memset(&s->rec, 0, sizeof s->rec); s->rec.active = EF_NO_SLOT; }
  return EF_SLOTS_OK;
}

static int check_slot(ef_slots *s, int slot, const ef_read_opts *opts, ef_image *img) {
  const ef_slot_info *si = &s->rec.slot[slot];
  const uint8_t *p;
  if (si->size > s->slot_size) return 0;
  p = ef_storage_map(s->st, ef_slots_offset(s, slot), si->size);
  return p && ef_image_read(p, si->size, opts, img, 0, 0) == EF_IMG_OK;
}

ef_slots_err ef_slots_boot(ef_slots *s, const ef_read_opts *opts, int *slot, ef_image *img) {
  int guard;
  for (guard = 0; guard < 4; guard++) {
    int a = s->rec.active, other;
    ef_slots_err e;
    if (a == EF_NO_SLOT) return EF_SLOTS_NO_IMAGE;
    other = 1 - a;
    if (s->rec.slot[a].state == EF_SLOT_CONFIRMED || (s->rec.slot[a].state == EF_SLOT_PENDING && !s->rec.trial)) {
      if (check_slot(s, a, opts, img)) {
        if (s->rec.slot[a].state == EF_SLOT_PENDING) {
          s->rec.trial = 1;
          if ((e = store(s)) != EF_SLOTS_OK) return e;
        }
        *slot = a;
        s->booted = a;
        return EF_SLOTS_OK;
      }
    }
    /* a trial boot that never confirmed, or an image that no longer verifies: fall back */
    s->rec.slot[a].state = EF_SLOT_INVALID;
    s->rec.trial = 0;
    s->rec.active = s->rec.slot[other].state == EF_SLOT_CONFIRMED ? (uint8_t)other : EF_NO_SLOT;
    if ((e = store(s)) != EF_SLOTS_OK) return e;
  }
  return EF_SLOTS_NO_IMAGE;
}

ef_slots_err ef_slots_confirm(ef_slots *s) {
  int a = s->rec.active;
  if (a == EF_NO_SLOT || s->rec.slot[a].state != EF_SLOT_PENDING) return EF_SLOTS_NOTHING_PENDING;
  s->rec.slot[a].state = EF_SLOT_CONFIRMED;
  s->rec.trial = 0;
  return store(s);
}

ef_slots_err ef_slots_rollback(ef_slots *s) {
  int a = s->rec.active;
  if (a == EF_NO_SLOT) return EF_SLOTS_NO_IMAGE;
  s->rec.slot[a].state = EF_SLOT_INVALID;
  s->rec.trial = 0;
  s->rec.active = s->rec.slot[1 - a].state == EF_SLOT_CONFIRMED ? (uint8_t)(1 - a) : EF_NO_SLOT;
  return store(s);
}

ef_slots_err ef_slots_rollback_to_previous(ef_slots *s) {
  int a = s->rec.active;
  if (a == EF_NO_SLOT || s->rec.slot[1 - a].state != EF_SLOT_CONFIRMED) return EF_SLOTS_NO_IMAGE;
  return ef_slots_rollback(s);
}

ef_slots_err ef_slots_upload_begin(ef_slots *s, uint32_t size, const uint8_t sha256[32], uint32_t *next) {
  int t = s->booted >= 0 ? 1 - s->booted : s->rec.active == EF_NO_SLOT ? 0 : 1 - s->rec.active;
  ef_slot_info *si = &s->rec.slot[t];
  ef_slots_err e;
  if (size == 0 || size > s->slot_size) return EF_SLOTS_RANGE;
  if (si->state == EF_SLOT_RECEIVING && si->size == size && !memcmp(si->sha256, sha256, 32)) {
    if (s->up_slot != t) {
      /* the same upload after a restart: the bytes already there are not known good, start over */
      s->up_slot = t; s->up_next = 0; s->up_erased = 0; s->up_verified = 0;
      ef_sha256_init(&s->up_hash);
    }
    *next = s->up_next;
    return EF_SLOTS_OK;
  }
  /* a new upload: the record says so before the first erase, so the slot never boots half-written */
  si->state = EF_SLOT_RECEIVING;
  if (s->rec.active == t) {
    /* a committed image not booted yet gives way: the other slot boots, if it can */
    s->rec.active = s->rec.slot[1 - t].state == EF_SLOT_CONFIRMED ? (uint8_t)(1 - t) : EF_NO_SLOT;
    s->rec.trial = 0;
  }
  si->size = size;
  memcpy(si->sha256, sha256, 32);
  if ((e = store(s)) != EF_SLOTS_OK) { s->up_slot = -1; return e; }
  s->up_slot = t; s->up_next = 0; s->up_erased = 0; s->up_verified = 0;
  ef_sha256_init(&s->up_hash);
  *next = 0;
  return EF_SLOTS_OK;
}

ef_slots_err ef_slots_upload_write(ef_slots *s, uint32_t offset, const uint8_t *data, uint32_t n) {
  const ef_slot_info *si;
  uint32_t base, end;
  if (s->up_slot < 0) return EF_SLOTS_NO_UPLOAD;
  si = &s->rec.slot[s->up_slot];
  if (offset != s->up_next) return EF_SLOTS_OFFSET;
  if ((uint64_t)offset + n > si->size) return EF_SLOTS_RANGE;
  base = ef_slots_offset(s, s->up_slot);
  end = offset + n;
  while (s->up_erased < end) {
    if (ef_storage_erase(s->st, base + s->up_erased, s->st->erase_block)) return EF_SLOTS_IO;
    s->up_erased += s->st->erase_block;
  }
  if (ef_storage_write(s->st, base + offset, data, n)) return EF_SLOTS_IO;
  ef_sha256_update(&s->up_hash, data, n);
  s->up_next = end;
  s->up_verified = 0;
  return EF_SLOTS_OK;
}

ef_slots_err ef_slots_upload_verify(ef_slots *s, const ef_read_opts *opts, uint8_t sha256_out[32], char *msg, uint32_t msg_cap) {
  const ef_slot_info *si;
  const uint8_t *p;
  uint8_t buf[256], got[32];
  uint32_t base, at;
  ef_sha256 h;
  ef_image img;
  ef_image_err e;
  if (s->up_slot < 0) return EF_SLOTS_NO_UPLOAD;
  si = &s->rec.slot[s->up_slot];
  if (s->up_next != si->size) return EF_SLOTS_INCOMPLETE;
  base = ef_slots_offset(s, s->up_slot);
  p = ef_storage_map(s->st, base, si->size);
  if (!p) return EF_SLOTS_IO;
  if ((e = ef_image_read(p, si->size, opts, &img, msg, msg_cap)) != EF_IMG_OK) {
    /* the message starts with the image error code (docs/protocol.md, ERROR IMAGE) */
    if (msg && msg_cap) {
      char tail[200];
      uint32_t i;
      for (i = 0; i + 1 < sizeof tail && msg[i]; i++) tail[i] = msg[i];
      tail[i] = 0;
      snprintf(msg, msg_cap, "%s: %s", ef_image_code(e), tail);
    }
    return EF_SLOTS_IMAGE;
  }
  /* the key the host gave, over what storage holds now (not what arrived) */
  ef_sha256_init(&h);
  for (at = 0; at < si->size; at += sizeof buf) {
    uint32_t n = si->size - at < sizeof buf ? si->size - at : (uint32_t)sizeof buf;
    if (ef_storage_read(s->st, base + at, buf, n)) return EF_SLOTS_IO;
    ef_sha256_update(&h, buf, n);
  }
  ef_sha256_final(&h, got);
  if (sha256_out) memcpy(sha256_out, got, 32);
  if (memcmp(got, si->sha256, 32) != 0) return EF_SLOTS_HASH;
  s->up_verified = 1;
  return EF_SLOTS_OK;
}

ef_slots_err ef_slots_commit(ef_slots *s) {
  ef_slots_err e;
  if (s->up_slot < 0) return EF_SLOTS_NO_UPLOAD;
  if (!s->up_verified) return EF_SLOTS_NOT_VERIFIED;
  s->rec.slot[s->up_slot].state = EF_SLOT_PENDING;
  s->rec.active = (uint8_t)s->up_slot;
  s->rec.trial = 0;
  if ((e = store(s)) != EF_SLOTS_OK) return e;
  s->up_slot = -1;
  return EF_SLOTS_OK;
}

ef_slots_err ef_slots_adopt(ef_slots *s, int slot, const ef_read_opts *opts) {
  ef_read_opts whole = *opts;
  ef_image img;
  const uint8_t *p;
  if (s->rec.seq != 0 || s->rec.active != EF_NO_SLOT || slot < 0 || slot > 1) return EF_SLOTS_NO_IMAGE;
  p = ef_storage_map(s->st, ef_slots_offset(s, slot), s->slot_size);
  whole.partition = 1;   /* the slot's bytes after the image are whatever flash held */
  if (!p || ef_image_read(p, s->slot_size, &whole, &img, 0, 0) != EF_IMG_OK) return EF_SLOTS_NO_IMAGE;
  s->rec.slot[slot].state = EF_SLOT_PENDING;
  s->rec.slot[slot].size = img.total_size;
  ef_sha256_once(p, img.total_size, s->rec.slot[slot].sha256);
  s->rec.active = (uint8_t)slot;
  s->rec.trial = 0;
  return store(s);
}
