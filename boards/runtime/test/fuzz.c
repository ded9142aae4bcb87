/* A seeded mutation fuzzer for the frame receiver and the image reader (no libFuzzer): built under
 * AddressSanitizer + UBSan by `make sanitize`, run by test/runtime-fuzz.test.ts.
 *   fuzz SEED FRAME_CASES IMAGE_CASES IMAGE... [--protocol CASES]
 * Frame cases: streams of valid frames, garbage and delimiters, mutated, fed byte by byte to a receiver
 * with a small max_frame; every delivered frame must respect the limits, and encode -> decode must
 * give the body back. Image cases: mutated images, half of them resealed (header CRC, section CRCs
 * and digest recomputed) so they reach the structure and contents checks. Protocol cases: sessions of
 * frames (a real upload of the first image among them: BEGIN, chunks, VERIFY, COMMIT, RESET), mutated,
 * fed to the whole device protocol over a RAM flash. Prints one JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/crc32.h"
#include "../core/frame.h"
#include "../core/image.h"
#include "../core/protocol.h"
#include "../core/sha256.h"
#include "../core/slots.h"
#include "../core/storage.h"

static uint64_t rs;
static uint32_t rnd(void) { rs ^= rs >> 12; rs ^= rs << 25; rs ^= rs >> 27; return (uint32_t)((rs * 0x2545F4914F6CDD1Dull) >> 32); }
static uint32_t pick(uint32_t n) { return n ? rnd() % n : 0; }

#define FAILX(...) do { fprintf(stderr, "fuzz: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

#define MAXF 300
static uint8_t rxbuf[EF_COBS_MAX(MAXF)];
static uint64_t frame_results[8];

static void frames(uint32_t cases) {
  static uint8_t stream[8192], body[MAXF + 64], enc[EF_COBS_MAX(MAXF + 64) + 1], back[MAXF + 64];
  static const uint8_t TYPES[] = {0x01, 0x02, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x20, 0x21, 0x55, 0x81, 0x7f};
  ef_rx rx;
  uint32_t c, i;
  for (c = 0; c < cases; c++) {
    uint32_t n = 0, parts = 1 + pick(6), muts = pick(4);
    ef_frame f;
    ef_rx_init(&rx, rxbuf, MAXF);
    if (pick(2)) stream[n++] = 0;
    for (i = 0; i < parts && n < sizeof stream - 1024; i++) {
      uint32_t kind = pick(4);
      if (kind < 3) {
        /* a frame: a receivable or not type, a payload of any length up to past the limit */
        uint32_t len = pick(4) ? pick(48) : pick(MAXF + 40), j, e;
        uint8_t pl[MAXF + 64];
        for (j = 0; j < len; j++) pl[j] = (uint8_t)(pick(3) ? pick(256) : 0);
        e = ef_frame_encode(TYPES[pick(sizeof TYPES)], (uint8_t)pick(256), pl, len, body, enc, sizeof enc);
        if (!e) FAILX("encode refused %u bytes", (unsigned)len);
        /* the round trip, on the side: a fresh receiver gives the body back */
        {
          ef_rx r2;
          ef_frame g;
          uint32_t k, got = 0;
          static uint8_t b2[EF_COBS_MAX(MAXF + 64)];
          ef_rx_init(&r2, b2, MAXF + 64);
          ef_rx_byte(&r2, 0, &g);
          for (k = 0; k < e; k++) {
            ef_rx_result rr = ef_rx_byte(&r2, enc[k], &g);
            if (rr == EF_RX_FRAME) { got = 1; memcpy(back, g.payload, g.len); if (g.len != len || memcmp(back, pl, len)) FAILX("round trip differs at case %u", (unsigned)c); }
            else if (rr == EF_RX_ERROR && r2.err_code != EF_E_UNKNOWN_TYPE && r2.err_code != EF_E_BAD_LENGTH) FAILX("round trip error %u at case %u", (unsigned)r2.err_code, (unsigned)c);
          }
          (void)got;
        }
        memcpy(stream + n, enc, e);
        n += e;
      } else {
        uint32_t len = pick(64), j;
        for (j = 0; j < len; j++) stream[n++] = (uint8_t)pick(256);
      }
    }
    for (i = 0; i < muts && n; i++) {
      uint32_t at = pick(n), op = pick(4);
      if (op == 0) stream[at] ^= (uint8_t)(1u << pick(8));
      else if (op == 1) stream[at] = 0;
      else if (op == 2 && n < sizeof stream - 1) { memmove(stream + at + 1, stream + at, n - at); stream[at] = (uint8_t)pick(256); n++; }
      else { memmove(stream + at, stream + at + 1, n - at - 1); n--; }
    }
    for (i = 0; i < n; i++) {
      ef_rx_result r = ef_rx_byte(&rx, stream[i], &f);
      if (r == EF_RX_FRAME) {
        uint32_t mn, mx;
        if (!ef_frame_host_type(f.type, &mn, &mx)) FAILX("delivered an unknown type");
        if (f.len + 6 > MAXF || f.len < mn || (mx != 0xFFFFFFFFu && f.len > mx)) FAILX("delivered a bad length %u", (unsigned)f.len);
        if (f.payload < rxbuf || f.payload + f.len > rxbuf + sizeof rxbuf) FAILX("payload outside the buffer");
        frame_results[0]++;
      } else if (r == EF_RX_ERROR) {
        if (rx.err_code < 1 || rx.err_code > 5) FAILX("error code %u", (unsigned)rx.err_code);
        frame_results[rx.err_code]++;
      }
    }
  }
}

static uint64_t image_codes[EF_IMG_CODE_COUNT];

/* Recompute the header CRC, the CRC of every section inside the image, and the digest. */
static void reseal(uint8_t *b, uint32_t n) {
  uint32_t hs, count, total, i, crc, flags, digest_at;
  uint8_t zero[4] = {0, 0, 0, 0};
  if (n < 24) return;
  count = (uint32_t)b[16] | (uint32_t)b[17] << 8;
  hs = 24 + 20 * (count > 16 ? 16 : count);
  if (hs > n) return;
  total = get32(b + 12);
  flags = (uint32_t)b[10] | (uint32_t)b[11] << 8;
  for (i = 0; i < count && 24 + 20 * i + 20 <= hs; i++) {
    uint8_t *e = b + 24 + 20 * i;
    uint32_t off = get32(e + 4), size = get32(e + 8);
    if ((uint64_t)off + size <= n) put32(e + 16, ef_crc32(0, b + off, size));
  }
  crc = ef_crc32(0, b, 20);
  crc = ef_crc32(crc, zero, 4);
  crc = ef_crc32(crc, b + 24, hs - 24);
  put32(b + 20, crc);
  digest_at = total - 32 - (flags & 1 ? 96 : 0);
  if (total <= n && total >= 32 + (flags & 1 ? 96 : 0) && digest_at >= hs) ef_sha256_once(b, digest_at, b + digest_at);
}

static void images(uint32_t cases, uint8_t **bases, uint32_t *sizes, int nb) {
  static uint8_t b[70000];
  uint32_t c, i;
  static const uint16_t ACCEPTS[1] = {2};
  for (c = 0; c < cases; c++) {
    /* the signed base one case in 20: an Ed25519 verification costs as much as ~25 unsigned cases */
    int which = nb > 1 && c % 20 == 19 ? 1 + (int)((c / 20) % (uint32_t)(nb - 1)) : 0;
    uint32_t n = sizes[which], muts = 1 + pick(3);
    ef_read_opts o;
    ef_image img;
    char msg[300];
    ef_image_err e;
    memcpy(b, bases[which], n);
    for (i = 0; i < muts && n; i++) {
      uint32_t op = pick(7), at = pick(3) ? pick(n < 2048 ? n : 2048) : pick(n);
      if (op == 0) b[at] ^= (uint8_t)(1u << pick(8));
      else if (op == 1) b[at] = (uint8_t)pick(256);
      else if (op == 2 && at + 4 <= n) {
        static const uint32_t V[] = {0, 1, 0xFFFFFFFFu, 0x7FFFFFFFu, 0x80000000u, 16, 64};
        put32(b + (at & ~3u), pick(2) ? V[pick(7)] : pick(1u << 16));
      }
      else if (op == 3) n = pick(n);
      else if (op == 4 && n + 64 < sizeof b) { uint32_t k, m = pick(64); for (k = 0; k < m; k++) b[n++] = (uint8_t)pick(256); }
      else if (op == 5 && n >= 24) {
        uint32_t count = (uint32_t)b[16] | (uint32_t)b[17] << 8, e2 = 24 + 20 * pick(count ? (count > 16 ? 16 : count) : 1) + 4 * pick(5);
        if (e2 + 4 <= n) put32(b + e2, get32(b + e2) + (pick(2) ? 16u : (uint32_t)-16));
      } else { uint32_t k, m = 1 + pick(16); for (k = 0; k < m && at + k < n; k++) b[at + k] = pick(2) ? 0 : 0xFF; }
    }
    if (pick(2)) reseal(b, n);
    memset(&o, 0, sizeof o);
    o.board_id = (uint16_t)(pick(4) ? 2 : 3);
    o.accepts = ACCEPTS;
    o.n_accepts = pick(2);
    o.capacity = pick(2) ? 3080192 : 0;
    o.partition = (int)pick(2);
    e = ef_image_read(b, n, &o, &img, msg, sizeof msg);
    if ((unsigned)e >= EF_IMG_CODE_COUNT) FAILX("code %d", (int)e);
    if (e != EF_IMG_OK && !msg[0]) FAILX("code %s without a message", ef_image_code(e));
    image_codes[e]++;
    if (e == EF_IMG_OK) {
      for (i = 0; i < img.n_tensors; i++) {
        ef_tensor t;
        ef_image_tensor(&img, i, &t);
        if ((uint64_t)t.offset + t.size > img.total_size) FAILX("tensor past the image");
      }
    }
  }
}


/* A RAM flash for the protocol cases: NOR semantics as the slot file's. */
#define RAM_EB 4096
#define RAM_SIZE (2 * RAM_EB + 2 * 65536)
static uint8_t ram[RAM_SIZE];
static int ram_read(void *c, uint32_t off, void *dst, uint32_t n) { (void)c; memcpy(dst, ram + off, n); return 0; }
static int ram_erase(void *c, uint32_t off, uint32_t n) { (void)c; memset(ram + off, 0xFF, n); return 0; }
static int ram_write(void *c, uint32_t off, const void *src, uint32_t n) { uint32_t i; (void)c; for (i = 0; i < n; i++) ram[off + i] &= ((const uint8_t *)src)[i]; return 0; }
static const uint8_t *ram_map(void *c, uint32_t off, uint32_t n) { (void)c; (void)n; return ram + off; }
static uint64_t proto_out_bytes, proto_resets, proto_frames_sent;
static void sink(void *c, const uint8_t *b, uint32_t n) { (void)c; (void)b; proto_out_bytes += n; }

static uint32_t add_frame(uint8_t *st, uint32_t n, uint32_t cap, uint8_t type, const uint8_t *pl, uint32_t len) {
  static uint8_t body[EF_MAX_FRAME + 16], enc[EF_COBS_MAX(EF_MAX_FRAME + 16) + 1];
  uint32_t e;
  if (len > EF_MAX_FRAME - 6) len = EF_MAX_FRAME - 6;
  e = ef_frame_encode(type, (uint8_t)pick(256), pl, len, body, enc, sizeof enc);
  if (!e || n + e > cap) return n;
  memcpy(st + n, enc, e);
  proto_frames_sent++;
  return n + e;
}

static void protocol(uint32_t cases, const uint8_t *img, uint32_t img_n) {
  static uint8_t st[200000], pl[EF_MAX_FRAME];
  static ef_proto p;
  static ef_slots slots;
  static const uint16_t none[1] = {0};
  static const uint8_t TYPES[] = {0x01, 0x02, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x20, 0x21};
  ef_storage sto = {0, RAM_SIZE, RAM_EB, ram_read, ram_erase, ram_write, ram_map};
  ef_read_opts o;
  uint32_t c;
  uint8_t sha[32];
  memset(&o, 0, sizeof o);
  o.board_id = 2; o.capacity = 65536; o.accepts = none;
  ef_sha256_once(img, img_n, sha);
  memset(ram, 0xFF, sizeof ram);
  for (c = 0; c < cases; c++) {
    uint32_t n = 0, i, k, muts = pick(3);
    if (c % 64 == 0) memset(ram, 0xFF, sizeof ram);   /* now and then a blank flash */
    st[n++] = 0;
    if (pick(3) == 0) {
      /* an upload of the image, chunk size random, then verify, commit, reset */
      uint32_t at = 0, chunk = 1 + pick(4000);
      put32(pl, img_n); memcpy(pl + 4, sha, 32);
      n = add_frame(st, n, sizeof st, 0x10, pl, 36);
      while (at < img_n) {
        uint32_t m = img_n - at < chunk ? img_n - at : chunk;
        put32(pl, at); memcpy(pl + 4, img + at, m);
        n = add_frame(st, n, sizeof st, 0x11, pl, 4 + m);
        at += m;
      }
      n = add_frame(st, n, sizeof st, 0x12, pl, 0);
      n = add_frame(st, n, sizeof st, 0x13, pl, 0);
      if (pick(2)) n = add_frame(st, n, sizeof st, 0x16, pl, 0);
    }
    for (i = 0, k = pick(8); i < k; i++) {
      uint32_t len = pick(4) ? pick(48) : pick(EF_MAX_FRAME), j;
      uint8_t t = TYPES[pick(sizeof TYPES)];
      for (j = 0; j < len; j++) pl[j] = (uint8_t)pick(256);
      if (t == 0x01 && pick(2)) { len = 4; pl[0] = 1; pl[1] = 0; }
      if (t == 0x11 && len >= 4) put32(pl, pick(2) ? pick(img_n) : rnd());
      n = add_frame(st, n, sizeof st, t, pl, len);
    }
    if (pick(4) == 0) { for (i = 0; i < 40 && n + 1 < sizeof st; i++) st[n++] = (uint8_t)(0x20 + pick(95)); if (n < sizeof st) st[n++] = '\r'; }
    for (i = 0; i < muts && n > 1; i++) {
      uint32_t at = 1 + pick(n - 1), op = pick(3);
      if (op == 0) st[at] ^= (uint8_t)(1u << pick(8));
      else if (op == 1) st[at] = 0;
      else st[at] = (uint8_t)pick(256);
    }
    if (ef_slots_open(&slots, &sto)) FAILX("slots_open");
    memset(&p, 0, sizeof p);
    p.board_name = "esp32"; p.opts = &o; p.slots = &slots; p.stack_bytes = 64 * 1024; p.write = sink;
    ef_proto_start(&p);
    for (i = 0; i < n;) {
      uint32_t step = 1 + pick(512);
      if (step > n - i) step = n - i;
      ef_proto_input(&p, st + i, step);
      i += step;
      if (p.reset) { proto_resets++; if (ef_slots_open(&slots, &sto)) FAILX("slots_open"); ef_proto_start(&p); }
    }
    if (p.app) ef_app_unload(p.app);
  }
}

int main(int argc, char **argv) {
  uint8_t *bases[4];
  uint32_t sizes[4], fc, ic, pc = 0, i;
  int nb = 0;
  if (argc < 5) { fprintf(stderr, "usage: fuzz SEED FRAME_CASES IMAGE_CASES IMAGE...\n"); return 2; }
  rs = strtoull(argv[1], 0, 10) * 0x9E3779B97F4A7C15ull + 1;
  fc = (uint32_t)strtoul(argv[2], 0, 10);
  ic = (uint32_t)strtoul(argv[3], 0, 10);
  for (i = 4; i < (uint32_t)argc && nb < 4; i++) {
    FILE *f;
    if (!strcmp(argv[i], "--protocol") && i + 1 < (uint32_t)argc) { pc = (uint32_t)strtoul(argv[++i], 0, 10); continue; }
    f = fopen(argv[i], "rb");
    long n;
    if (!f) { perror(argv[i]); return 2; }
    fseek(f, 0, SEEK_END); n = ftell(f); fseek(f, 0, SEEK_SET);
    if (n <= 0 || n > 65536) { fprintf(stderr, "%s: size\n", argv[i]); return 2; }
    bases[nb] = malloc((size_t)n);
    if (!bases[nb] || fread(bases[nb], 1, (size_t)n, f) != (size_t)n) return 2;
    sizes[nb++] = (uint32_t)n;
    fclose(f);
  }
  frames(fc);
  images(ic, bases, sizes, nb);
  if (pc) protocol(pc, bases[0], sizes[0]);
  printf("{\"frame_cases\":%u,\"image_cases\":%u,\"frames\":{\"delivered\":%llu,\"bad_frame\":%llu,\"bad_crc\":%llu,\"unknown_type\":%llu,\"bad_length\":%llu,\"too_large\":%llu},\"images\":{",
         (unsigned)fc, (unsigned)ic, (unsigned long long)frame_results[0], (unsigned long long)frame_results[1], (unsigned long long)frame_results[2],
         (unsigned long long)frame_results[3], (unsigned long long)frame_results[4], (unsigned long long)frame_results[5]);
  for (i = 0; i < EF_IMG_CODE_COUNT; i++) printf("%s\"%s\":%llu", i ? "," : "", ef_image_code((ef_image_err)i), (unsigned long long)image_codes[i]);
  printf("},\"protocol\":{\"cases\":%u,\"frames\":%llu,\"resets\":%llu,\"bytes_out\":%llu}}\n", (unsigned)pc,
         (unsigned long long)proto_frames_sent, (unsigned long long)proto_resets, (unsigned long long)proto_out_bytes);
  for (i = 0; i < (uint32_t)nb; i++) free(bases[i]);
  return 0;
}
