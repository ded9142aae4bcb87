#include "json.h"

static int utf8_ok(const uint8_t *b, uint32_t n) {
  uint32_t i = 0;
  while (i < n) {
    uint8_t c = b[i];
    uint32_t need, cp, j;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
    else return 0;
    if (n - i <= need) return 0;
    for (j = 1; j <= need; j++) {
      if ((b[i + j] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (b[i + j] & 0x3F);
    }
    if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    i += need + 1;
  }
  return 1;
}

static int hexd(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int digit(uint8_t c) { return c >= '0' && c <= '9'; }

int ef_json_object(const uint8_t *b, uint32_t n) {
  uint8_t stack[EF_JSON_MAX_DEPTH]; /* '{' or '[' per open container */
  uint32_t depth = 0, i = 0;
  int first = 0;
  if (!utf8_ok(b, n)) return EF_JSON_BAD_UTF8;
  if (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) i = 3;
#define WS() while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r')) i++
  WS();
  if (i >= n) return EF_JSON_BAD;
  {
    /* Only the top level's kind decides "not an object"; scan the value first, then judge. */
    uint8_t top = b[i];
    for (;;) {
      /* a value at b[i] */
      WS();
      if (i >= n) return EF_JSON_BAD;
      if (b[i] == '{' || b[i] == '[') {
        if (depth == EF_JSON_MAX_DEPTH) return EF_JSON_BAD;
        stack[depth++] = b[i++];
        WS();
        if (i < n && b[i] == (stack[depth - 1] == '{' ? '}' : ']')) { i++; depth--; goto after_value; }
        first = 1;
        goto member;
      } else if (b[i] == '"') {
      string:
        i++;
        for (;;) {
          if (i >= n || b[i] < 0x20) return EF_JSON_BAD;
          if (b[i] == '"') { i++; break; }
          if (b[i] == '\\') {
            i++;
            if (i >= n) return EF_JSON_BAD;
            if (b[i] == 'u') {
              if (n - i < 5 || !hexd(b[i + 1]) || !hexd(b[i + 2]) || !hexd(b[i + 3]) || !hexd(b[i + 4])) return EF_JSON_BAD;
              i += 5;
            } else if (b[i] == '"' || b[i] == '\\' || b[i] == '/' || b[i] == 'b' || b[i] == 'f' || b[i] == 'n' || b[i] == 'r' || b[i] == 't') {
              i++;
            } else return EF_JSON_BAD;
          } else i++;
        }
        if (first == 2) { /* that was a key */
          WS();
          if (i >= n || b[i] != ':') return EF_JSON_BAD;
          i++;
          first = 0;
          continue;
        }
      } else if (b[i] == '-' || digit(b[i])) {
        if (b[i] == '-') i++;
        if (i >= n || !digit(b[i])) return EF_JSON_BAD;
        if (b[i] == '0') i++; else while (i < n && digit(b[i])) i++;
        if (i < n && b[i] == '.') { i++; if (i >= n || !digit(b[i])) return EF_JSON_BAD; while (i < n && digit(b[i])) i++; }
        if (i < n && (b[i] == 'e' || b[i] == 'E')) {
          i++;
          if (i < n && (b[i] == '+' || b[i] == '-')) i++;
          if (i >= n || !digit(b[i])) return EF_JSON_BAD;
          while (i < n && digit(b[i])) i++;
        }
      } else {
        static const char *const LIT[3] = {"true", "false", "null"};
        static const uint32_t LEN[3] = {4, 5, 4};
        int k, hit = 0;
        for (k = 0; k < 3 && !hit; k++) {
          uint32_t j;
          if (n - i < LEN[k]) continue;
          for (j = 0; j < LEN[k] && b[i + j] == (uint8_t)LIT[k][j]; j++) {}
          if (j == LEN[k]) { i += LEN[k]; hit = 1; }
        }
        if (!hit) return EF_JSON_BAD;
      }
    after_value:
      WS();
      if (depth == 0) break;
      if (i >= n) return EF_JSON_BAD;
      if (b[i] == (stack[depth - 1] == '{' ? '}' : ']')) { i++; depth--; goto after_value; }
      if (b[i] != ',') return EF_JSON_BAD;
      i++;
      first = 0;
    member:
      (void)first;
      if (stack[depth - 1] == '{') {
        WS();
        if (i >= n || b[i] != '"') return EF_JSON_BAD;
        first = 2;
        goto string;
      }
    }
    if (i != n) return EF_JSON_BAD;
    return top == '{' ? EF_JSON_OK : EF_JSON_NOT_OBJECT;
  }
#undef WS
}
