/* Two image slots (A, B) and the slot-state record, as ESP-IDF keeps otadata: the record lives in two
 * erase blocks at the region's start, written alternately (copy = seq & 1), each with a sequence number
 * and a CRC-32; the valid copy with the newer sequence wins, so a write cut by a power loss leaves the
 * previous record in force. The record changes only at whole steps (upload started, committed, trial
 * boot begun, confirmed, rolled back), which makes every power cut land on the old image or the new one.
 *
 * States: EMPTY -> RECEIVING (upload_begin, before the first erase) -> PENDING (commit, after VERIFY)
 * -> CONFIRMED (confirm after the first inference self-test). A pending slot boots once on trial; if
 * that boot ends without a confirm (crash, power cut, failed self-test) the next boot marks it INVALID
 * and boots the previous confirmed slot (rollback). Region layout:
 *   [record copy 0: 1 erase block][record copy 1: 1 erase block][slot 0][slot 1]
 * The record, byte for byte, and how a copy is chosen: docs/slots.md (vectors in test/vectors/slots/). */
#ifndef EF_SLOTS_H
#define EF_SLOTS_H
#include <stdint.h>
#include "image.h"
#include "sha256.h"
#include "storage.h"
#include "../../../test/vectors/protocol/protocol.gen.h"

/* The state byte is the protocol's slot state (docs/protocol.md, INFO; EF_SLOT_* generated from
 * host/board/frames.ts SLOT_STATES): the record holds empty, receiving, pending, confirmed and invalid;
 * written and verified are an upload's progress in RAM (INFO reports them for the slot receiving). */
#define EF_NO_SLOT 0xFF

typedef struct {
  uint8_t state;
  uint32_t size;              /* image bytes */
  uint8_t sha256[32];         /* SHA-256 of the whole image: the upload key */
} ef_slot_info;

typedef struct {
  uint32_t seq;
  uint8_t active;             /* the slot that boots, or EF_NO_SLOT */
  uint8_t trial;              /* 1: the active slot is pending and its trial boot has begun */
  ef_slot_info slot[2];
} ef_slot_record;

#define EF_SLOT_RECORD_BYTES 100
/* The one writer and reader of the record's bytes: decode returns 0 for a copy to ignore (magic,
 * version, CRC, an active slot or a state out of range). */
void ef_slot_record_encode(const ef_slot_record *r, uint8_t b[EF_SLOT_RECORD_BYTES]);
int ef_slot_record_decode(const uint8_t b[EF_SLOT_RECORD_BYTES], ef_slot_record *r);

typedef enum {
  EF_SLOTS_OK = 0, EF_SLOTS_IO, EF_SLOTS_RANGE, EF_SLOTS_NO_UPLOAD, EF_SLOTS_OFFSET, EF_SLOTS_INCOMPLETE,
  EF_SLOTS_IMAGE, EF_SLOTS_HASH, EF_SLOTS_NOT_VERIFIED, EF_SLOTS_NOTHING_PENDING, EF_SLOTS_NO_IMAGE,
} ef_slots_err;
const char *ef_slots_code(ef_slots_err e);

typedef struct {
  const ef_storage *st;
  uint32_t slot_size;         /* bytes per slot: a multiple of the erase block */
  ef_slot_record rec;
  /* the upload in progress (RAM only: after a restart an upload begins again at 0) */
  int booted;                 /* the slot running now (ef_slots_boot), -1: none */
  int up_slot;                /* -1: none */
  uint32_t up_next;           /* the offset expected next */
  uint32_t up_erased;         /* bytes of the slot erased so far */
  int up_verified;
  ef_sha256 up_hash;          /* SHA-256 of bytes [0, up_next) as they arrived */
} ef_slots;

uint32_t ef_slots_offset(const ef_slots *s, int slot);   /* the slot's offset in the region */
ef_slots_err ef_slots_open(ef_slots *s, const ef_storage *st);
/* Chooses the slot to boot (trial boot, rollback, an image that no longer verifies is marked INVALID):
 * returns it in *slot, or EF_SLOTS_NO_IMAGE. `opts` are the board's image checks. */
ef_slots_err ef_slots_boot(ef_slots *s, const ef_read_opts *opts, int *slot, ef_image *img);
ef_slots_err ef_slots_confirm(ef_slots *s);
/* The other slot, when it is confirmed, boots next; the active one becomes invalid. */
ef_slots_err ef_slots_rollback(ef_slots *s);
/* ROLLBACK: as ef_slots_rollback, but only when the other slot is confirmed (else EF_SLOTS_NO_IMAGE, nothing changes). */
ef_slots_err ef_slots_rollback_to_previous(ef_slots *s);
/* Upload into the slot that is not booted (not active, when nothing booted); a pending slot that
 * is not booted yet is given up for it. Same size and SHA-256 as an upload in progress: resumes
 * (*next is the offset expected); anything else starts at 0. */
ef_slots_err ef_slots_upload_begin(ef_slots *s, uint32_t size, const uint8_t sha256[32], uint32_t *next);
ef_slots_err ef_slots_upload_write(ef_slots *s, uint32_t offset, const uint8_t *data, uint32_t n);
/* Every image check on the written bytes (mapped from storage; msg: `<image code>: <message>`), then
 * the SHA-256 of what storage holds, read back (sha256_out). */
ef_slots_err ef_slots_upload_verify(ef_slots *s, const ef_read_opts *opts, uint8_t sha256_out[32], char *msg, uint32_t msg_cap);
ef_slots_err ef_slots_commit(ef_slots *s);
/* An image written into a slot by other means than an upload (`idf.py flash` of a project generated
 * with --image writes slot 0 and erases the record): when no record copy was ever valid (seq 0) and the
 * slot's bytes read as an image (every check; bytes after it ignored), it is recorded as a commit
 * records an upload: pending, active, to boot on trial. EF_SLOTS_NO_IMAGE when there is none to adopt. */
ef_slots_err ef_slots_adopt(ef_slots *s, int slot, const ef_read_opts *opts);
#endif
