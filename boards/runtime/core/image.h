/* The edge-flash image reader (docs/image-format.md), the board's twin of host/image/read.ts: the same
 * checks in the same order with the same error codes (test/vectors/image/). It reads the image where
 * it lies (memory-mapped flash) and copies nothing; every size is checked in 64-bit arithmetic before
 * it is used as an offset. */
#ifndef EF_IMAGE_H
#define EF_IMAGE_H
#include <stddef.h>
#include <stdint.h>

#define EF_IMAGE_VERSION 3     /* 3: the descriptor section; 2: the tokenizer section is the app's EFTK form, config text_bytes */
#define EF_IMAGE_HEADER_BYTES 24
#define EF_IMAGE_SECTION_BYTES 20
#define EF_IMAGE_MAX_SECTIONS 16
#define EF_IMAGE_FLAG_SIGNED 1

/* Error codes: the names are the stable codes of the spec (ef_image_code). */
typedef enum {
  EF_IMG_OK = 0,
  EF_IMG_TRUNCATED, EF_IMG_TRAILING, EF_IMG_MAGIC, EF_IMG_VERSION, EF_IMG_FUTURE_VERSION, EF_IMG_HEADER,
  EF_IMG_HEADER_CRC, EF_IMG_WRONG_BOARD, EF_IMG_OVERSIZED, EF_IMG_SECTION_KIND, EF_IMG_SECTION_DUPLICATE,
  EF_IMG_SECTION_MISSING, EF_IMG_SECTION_ALIGN, EF_IMG_MISALIGNED, EF_IMG_SECTION_BOUNDS, EF_IMG_OVERLAP,
  EF_IMG_SECTION_CRC, EF_IMG_SHA256, EF_IMG_SIGNATURE, EF_IMG_APP, EF_IMG_CONFIG, EF_IMG_TOKENIZER,
  EF_IMG_TENSOR, EF_IMG_METADATA, EF_IMG_DESCRIPTOR, EF_IMG_DESCRIPTOR_TOKENIZER, EF_IMG_DESCRIPTOR_TENSOR,
  EF_IMG_DESCRIPTOR_KERNEL, EF_IMG_DESCRIPTOR_RESIDENT,
  EF_IMG_CODE_COUNT
} ef_image_err;

const char *ef_image_code(ef_image_err e);

enum { EF_KIND_APP = 1, EF_KIND_CONFIG = 2, EF_KIND_TOKENIZER = 3, EF_KIND_WEIGHTS = 4, EF_KIND_METADATA = 5, EF_KIND_DESCRIPTOR = 6 };

typedef struct {
  uint16_t board_id;            /* this board */
  const uint16_t *accepts;      /* other board ids whose images it runs */
  uint32_t n_accepts;
  uint64_t capacity;            /* bytes an image may have; 0: no limit */
  const uint8_t *public_key;    /* 32 bytes: a signature by this key is required; NULL: none */
  int partition;                /* bytes are a whole partition: bytes after the image are ignored */
} ef_read_opts;

typedef struct { uint32_t kind, offset, size, align, crc; } ef_section;

typedef struct {
  uint32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, ctx, flags;
  uint32_t planned_linear, linear_limit;
  uint32_t text_bytes;          /* the app's prompt buffer, 1..65536 */
  uint8_t kv_format, act_format;
  uint16_t batch;
  float norm_eps, rope_theta;
} ef_config;

typedef struct {
  char name[32];                /* NUL-terminated */
  uint16_t format, flags;
  uint32_t rows, cols, cols_padded, rows_padded;
  float scale;
  uint32_t offset, size;        /* offset from the image start */
} ef_tensor;

typedef struct {
  const uint8_t *bytes;         /* the image where it lies */
  uint16_t version, board_id, flags, header_size;
  uint32_t total_size, digest_offset;
  uint32_t n_sections;
  ef_section sections[EF_IMAGE_MAX_SECTIONS];   /* in table order */
  uint8_t digest[32];
  const uint8_t *public_key;    /* in the trailer when signed, else NULL */
  ef_config config;
  const ef_section *app, *config_section, *tokenizer, *weights, *metadata;
  /* The model descriptor exactly as model_init reads it (desc.gen.h, docs/model.md): descriptor->offset
   * and ->size locate it in the image. Its tensor and tokenizer offsets are image offsets (what
   * edge.weights_read serves from 0) and its pointers 0: copy the section's bytes into linear memory
   * and call model_init on them. Checked against the config, the tokenizer section and the weights
   * directory (formats, ranges, kernel ids, residency) by ef_image_read. */
  const ef_section *descriptor;
  uint32_t n_tensors;
} ef_image;

/* Reads and checks n bytes; on failure returns the code and writes one line to msg (msg may be NULL). */
ef_image_err ef_image_read(const uint8_t *bytes, uint64_t n, const ef_read_opts *opts, ef_image *out, char *msg, size_t msg_cap);

/* Tensor i of a checked image (i < n_tensors). */
void ef_image_tensor(const ef_image *img, uint32_t i, ef_tensor *t);

/* The checks of steps 1-10 on the first bytes of an image (at least 24 + 20 * 16 bytes, or all there is):
 * what an upload checks before it erases anything. Sets *total_size. */
ef_image_err ef_image_check_header(const uint8_t *bytes, uint64_t n, const ef_read_opts *opts, uint32_t *total_size, char *msg, size_t msg_cap);

#endif
