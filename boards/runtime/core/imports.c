/* The one link table: docs/abi.md, assembly/abi.ts and host/engine/imports.ts name the same set; both
 * app implementations (core/app.c in wasm3, aot/app_aot.c ahead of time) provide exactly these. */
#include "app.h"

const ef_import EF_IMPORTS[] = {
  {"edge", "abort", "v(iiii)"},
  {"edge", "log", "v(ii)"},
  {"edge", "weights_read", "v(iii)"},
};
const uint32_t EF_IMPORT_COUNT = sizeof EF_IMPORTS / sizeof *EF_IMPORTS;
