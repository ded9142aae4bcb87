/* A JSON syntax check (RFC 8259, as JavaScript's JSON.parse accepts it) over strict UTF-8 (as
 * TextDecoder's fatal mode, a leading BOM skipped): the image's metadata section must be an object.
 * Iterative, nesting bounded by EF_JSON_MAX_DEPTH, no allocation. */
#ifndef EF_JSON_H
#define EF_JSON_H
#include <stdint.h>
#define EF_JSON_MAX_DEPTH 512
enum { EF_JSON_OK = 0, EF_JSON_BAD_UTF8, EF_JSON_BAD, EF_JSON_NOT_OBJECT };
int ef_json_object(const uint8_t *b, uint32_t n);
#endif
