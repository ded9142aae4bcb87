/* Reads an image file with the C reader and prints what it found as one JSON line, for
 * test/runtime-image.test.ts to compare with test/vectors/image/vectors.json.
 * Usage: image_check [--board-id N] [--accepts N,...] [--capacity BYTES] [--key HEX64] FILE...
 * One line per file, in order; exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/image.h"

static int unhex(const char *s, uint8_t *out, size_t n) {
  size_t i;
  if (strlen(s) != 2 * n) return 0;
  for (i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return 0;
    out[i] = (uint8_t)v;
  }
  return 1;
}

static void check_file(const char *path, const ef_read_opts *o) {
  ef_image img;
  char msg[512];
  FILE *f;
  long n;
  uint8_t *buf;
  int i;
  ef_image_err e;
  f = fopen(path, "rb");
  if (!f) { printf("{\"ok\":false,\"code\":\"io\"}\n"); return; }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc(n ? (size_t)n : 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { printf("{\"ok\":false,\"code\":\"io\"}\n"); fclose(f); free(buf); return; }
  fclose(f);
  e = ef_image_read(buf, (uint64_t)n, o, &img, msg, sizeof msg);
  if (e != EF_IMG_OK) {
    printf("{\"ok\":false,\"code\":\"%s\",\"message\":\"", ef_image_code(e));
    for (i = 0; msg[i]; i++) printf(msg[i] == '"' || msg[i] == '\\' ? "\\%c" : "%c", msg[i]);
    printf("\"}\n");
    free(buf);
    return;
  }
  printf("{\"ok\":true,\"board_id\":%u,\"total_size\":%u,\"signed\":%s,\"sha256\":\"", img.board_id, img.total_size, img.public_key ? "true" : "false");
  for (i = 0; i < 32; i++) printf("%02x", img.digest[i]);
  printf("\",\"sections\":[");
  for (i = 0; i < (int)img.n_sections; i++) {
    const ef_section *s = &img.sections[i];
    printf("%s{\"kind\":%u,\"offset\":%u,\"size\":%u,\"align\":%u,\"crc32\":%u}", i ? "," : "", s->kind, s->offset, s->size, s->align, s->crc);
  }
  printf("],\"config\":{\"dim\":%u,\"hiddenDim\":%u,\"nLayers\":%u,\"nHeads\":%u,\"nKvHeads\":%u,\"vocabSize\":%u,\"seqLen\":%u,\"sharedClassifier\":%s,\"ctx\":%u,\"kv\":%u,\"act\":%u,\"normEps\":%.17g,\"ropeTheta\":%.17g,\"plannedLinear\":%u,\"linearLimit\":%u,\"batch\":%u,\"textBytes\":%u},\"tensors\":[",
         img.config.dim, img.config.hidden_dim, img.config.n_layers, img.config.n_heads, img.config.n_kv_heads, img.config.vocab_size,
         img.config.seq_len, img.config.flags & 1 ? "true" : "false", img.config.ctx, img.config.kv_format, img.config.act_format,
         (double)img.config.norm_eps, (double)img.config.rope_theta, img.config.planned_linear, img.config.linear_limit, img.config.batch, img.config.text_bytes);
  for (i = 0; i < (int)img.n_tensors; i++) {
    ef_tensor t;
    ef_image_tensor(&img, (uint32_t)i, &t);
    printf("%s{\"name\":\"%s\",\"format_id\":%u,\"rows\":%u,\"cols\":%u,\"cols_padded\":%u,\"scale\":%.17g,\"offset\":%u,\"size\":%u}", i ? "," : "",
           t.name, t.format, t.rows, t.cols, t.cols_padded, (double)t.scale, t.offset, t.size);
  }
  printf("]}\n");
  free(buf);
}

int main(int argc, char **argv) {
  ef_read_opts o;
  uint16_t accepts[8];
  uint8_t key[32];
  int i;
  memset(&o, 0, sizeof o);
  for (i = 1; i < argc; i++) {
    if (argv[i][0] != '-') { check_file(argv[i], &o); continue; }
    if (i + 1 >= argc) { fprintf(stderr, "image_check: %s needs a value\n", argv[i]); return 2; }
    if (!strcmp(argv[i], "--board-id")) o.board_id = (uint16_t)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--capacity")) o.capacity = strtoull(argv[i + 1], 0, 10);
    else if (!strcmp(argv[i], "--key")) { if (!unhex(argv[i + 1], key, 32)) return 2; o.public_key = key; }
    else if (!strcmp(argv[i], "--accepts")) {
      char *p = argv[i + 1];
      while (*p && o.n_accepts < 8) { accepts[o.n_accepts++] = (uint16_t)strtoul(p, &p, 10); if (*p == ',') p++; }
      o.accepts = accepts;
    } else { fprintf(stderr, "image_check: unknown option %s\n", argv[i]); return 2; }
    i++;
  }
  fflush(stdout);
  return 0;
}
