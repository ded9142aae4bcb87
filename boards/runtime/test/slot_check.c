/* The slot record (core/slots.c) against test/vectors/slots/ (test/runtime-slot-record.test.ts writes
 * the cases): one request a line on stdin, one answer a line on stdout.
 *   E <seq> <active> <trial> <state> <size> <sha hex> <state> <size> <sha hex>  -> the record's 100 bytes, hex
 *   D <hex>                      -> the same fields decoded, or `ignored`
 *   O <hex copy 0> <hex copy 1>  -> the record ef_slots_open chooses from a region holding those copies */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/slots.h"

#define EB 4096
static uint8_t region[4 * EB];
static char line[4096];

static int unhex(const char *s, uint8_t *o, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; i++) { unsigned v; if (sscanf(s + 2 * i, "%2x", &v) != 1) return 0; o[i] = (uint8_t)v; }
  return 1;
}
static void hex(const uint8_t *b, uint32_t n) { uint32_t i; for (i = 0; i < n; i++) printf("%02x", b[i]); }

static void print_record(const ef_slot_record *r) {
  int i;
  printf("%u %u %u", (unsigned)r->seq, r->active, r->trial);
  for (i = 0; i < 2; i++) { printf(" %u %u ", r->slot[i].state, (unsigned)r->slot[i].size); hex(r->slot[i].sha256, 32); }
}

static int rd(void *c, uint32_t off, void *dst, uint32_t n) { (void)c; memcpy(dst, region + off, n); return 0; }
static int er(void *c, uint32_t off, uint32_t n) { (void)c; memset(region + off, 0xFF, n); return 0; }
static int wr(void *c, uint32_t off, const void *src, uint32_t n) { (void)c; memcpy(region + off, src, n); return 0; }

int main(void) {
  while (fgets(line, sizeof line, stdin)) {
    ef_slot_record r;
    uint8_t b[EF_SLOT_RECORD_BYTES];
    memset(&r, 0, sizeof r);
    if (line[0] == 'E') {
      unsigned seq, active, trial, st[2], size[2];
      char sha[2][65];
      int i;
      if (sscanf(line + 2, "%u %u %u %u %u %64s %u %u %64s", &seq, &active, &trial, &st[0], &size[0], sha[0], &st[1], &size[1], sha[1]) != 9) { printf("bad request\n"); continue; }
      r.seq = seq; r.active = (uint8_t)active; r.trial = (uint8_t)trial;
      for (i = 0; i < 2; i++) { r.slot[i].state = (uint8_t)st[i]; r.slot[i].size = size[i]; unhex(sha[i], r.slot[i].sha256, 32); }
      ef_slot_record_encode(&r, b);
      hex(b, sizeof b);
    } else if (line[0] == 'D') {
      if (!unhex(line + 2, b, sizeof b)) { printf("bad request\n"); continue; }
      if (ef_slot_record_decode(b, &r)) print_record(&r);
      else printf("ignored");
    } else if (line[0] == 'O') {
      ef_storage st;
      ef_slots s;
      memset(region, 0xFF, sizeof region);
      if (!unhex(line + 2, region, EF_SLOT_RECORD_BYTES) || !unhex(line + 3 + 2 * EF_SLOT_RECORD_BYTES, region + EB, EF_SLOT_RECORD_BYTES)) { printf("bad request\n"); continue; }
      memset(&st, 0, sizeof st);
      st.size = sizeof region; st.erase_block = EB; st.read = rd; st.erase = er; st.write = wr;
      if (ef_slots_open(&s, &st)) printf("open failed");
      else print_record(&s.rec);
    } else continue;
    printf("\n");
  }
  return 0;
}
