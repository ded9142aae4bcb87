#!/bin/sh
# The AOT app's C, from an app.wasm: `aot-gen.sh APP.wasm OUTDIR` writes OUTDIR/app_module.c and .h
# (wasm2c, module name `app`), OUTDIR/app_aot.gen.h: the app's SHA-256 (aot/app_aot.c refuses an
# image with another app) and the table of its exports that take and return only i32 (ef_app_call),
# and OUTDIR/wasm-rt.h, the installed wabt's header the translated code includes (copied beside it: a
# cross compiler or ESP-IDF does not search this machine's /usr/include). The Makefile's `aot` targets
# and `edge-flash firmware --aot` both translate through this script.
set -e
wasm=$1
out=$2
command -v wasm2c >/dev/null 2>&1 || { echo "aot-gen.sh: no wasm2c: install wabt (tools/install-system-deps.sh)" >&2; exit 2; }
mkdir -p "$out"
# wasm-rt.h: where the wasm2c on PATH installed it (PREFIX/bin/wasm2c -> PREFIX/include/wasm-rt.h)
rt_h="$(dirname "$(command -v wasm2c)")/../include/wasm-rt.h"
[ -f "$rt_h" ] || rt_h=/usr/include/wasm-rt.h
[ -f "$rt_h" ] || { echo "aot-gen.sh: wasm2c has no wasm-rt.h beside it (looked in $(dirname "$(command -v wasm2c)")/../include and /usr/include): reinstall wabt" >&2; exit 2; }
cp "$rt_h" "$out/wasm-rt.h"
wasm2c "$wasm" -n app -o "$out/app_module.c"
# wasm2c keeps every load alive with an empty asm on its result, for guard pages (a load whose value
# is unused must still fault). With explicit bounds checks the check is what traps, and the asm only
# stops the compiler from keeping linear memory's base and size in registers across a loop (a load
# costs two more memory reads and a round trip through an integer register): dropped.
grep -q 'wasm_asm("" ::"r"(result));' "$out/app_module.c" || { echo "aot-gen.sh: wasm2c's load no longer has the asm this script removes: check $out/app_module.c" >&2; exit 2; }
# (POSIX sed and a SHA-256 from coreutils or macOS's shasum: `edge-flash firmware --aot` runs this where ESP-IDF users work)
sed 's/^\( *\)wasm_asm("" ::"r"(result));/\1\/\* (aot-gen.sh: no asm barrier: bounds checks are explicit) \*\//' "$out/app_module.c" > "$out/app_module.c.tmp"
mv "$out/app_module.c.tmp" "$out/app_module.c"
# The f32p8 GEMV (assembly/kernels/float.ts, docs/formats.md) reads exactly w[0, 4mk), x[0, 4nk) and
# writes y[0, 4nm) (m, k, n > 0). Each of its loads checks its own bounds, and those branches keep the
# C compiler from vectorizing its eight rows per x (one 256-bit multiply and add). So the kernel gets
# one range check per call over the three ranges: in bounds, a copy of its body without per-access
# checks runs (none of its accesses can fault: they all lie in the ranges just checked); otherwise the
# original, checked body runs and traps where it would have. Nothing else in the app changes. The
# copy is made only when the body is what the contract covers: f32 loads and stores, no calls.
f=w2c_gemm_f32p8_f32_naive
sig="static void $f(Z_app_instance_t* instance, u32 w2c_p0, f32 w2c_p1, u32 w2c_p2, u32 w2c_p3, u32 w2c_p4, u32 w2c_p5, u32 w2c_p6, u32 w2c_p7) {"
grep -qxF "$sig" "$out/app_module.c" || { echo "aot-gen.sh: $f is not in $out/app_module.c as this script expects it" >&2; exit 2; }
body=$(awk -v s="$sig" '$0 == s { on = 1; next } on && /^}/ { exit } on' "$out/app_module.c")
if echo "$body" | sed 's/f32_load(&instance->w2c_memory, //g; s/f32_store(&instance->w2c_memory, //g' | grep -q '(instance\|_load\|_store\|w2c_f[0-9]*('; then
  echo "aot-gen.sh: $f's body has calls or memory accesses other than f32 loads and stores: its range check would not cover them" >&2; exit 2
fi
awk -v s="$sig" -v f="$f" '
  $0 == s {
    print "#if WABT_BIG_ENDIAN"
    print "#error aot-gen.sh: the unchecked f32 accesses below are written for little-endian memory"
    print "#endif"
    print "/* (aot-gen.sh) f32p8: one range check per call, see aot-gen.sh */"
    print "static inline f32 ef_f32_load_in_range(wasm_rt_memory_t* mem, u64 addr) { f32 r; wasm_rt_memcpy(&r, &mem->data[addr], sizeof r); return r; }"
    print "static inline void ef_f32_store_in_range(wasm_rt_memory_t* mem, u64 addr, f32 v) { wasm_rt_memcpy(&mem->data[addr], &v, sizeof v); }"
    print "static inline int ef_f32p8_in_range(const wasm_rt_memory_t* mem, u32 w, u32 x, u32 y, u32 m, u32 k, u32 n) {"
    print "  if ((s32)m <= 0 || (s32)k <= 0 || (s32)n <= 0) return 0;"
    print "  return (u64)w + 4u * (u64)m * k <= mem->size && (u64)x + 4u * (u64)n * k <= mem->size && (u64)y + 4u * (u64)n * m <= mem->size;"
    print "}"
    t = s; sub(f "\\(", f "_in_range(", t); print t
    copy = 1; next
  }
  copy && /^}/ { print; copy = 0; print s; print "  if (ef_f32p8_in_range(&instance->w2c_memory, w2c_p0, w2c_p2, w2c_p4, w2c_p5, w2c_p6, w2c_p7)) {"; print "    " f "_in_range(instance, w2c_p0, w2c_p1, w2c_p2, w2c_p3, w2c_p4, w2c_p5, w2c_p6, w2c_p7);"; print "    return;"; print "  }"; printf "%s\n", body; print "}"; next }
  copy { l = $0; gsub(/f32_load\(/, "ef_f32_load_in_range(", l); gsub(/f32_store\(/, "ef_f32_store_in_range(", l); print l; next }
  { print }
' body="$body" "$out/app_module.c" > "$out/app_module.c.tmp"
mv "$out/app_module.c.tmp" "$out/app_module.c"
if command -v sha256sum >/dev/null 2>&1; then sha=$(sha256sum "$wasm" | cut -c1-64); else sha=$(shasum -a 256 "$wasm" | cut -c1-64); fi
{
  echo "/* Generated by boards/runtime/aot-gen.sh from $(basename "$wasm"): do not edit. */"
  echo '#include "app_module.h"'
  printf 'static const uint8_t EF_AOT_APP_SHA256[32] = {'
  echo "$sha" | sed 's/\(..\)/0x\1,/g; s/,$//'
  echo '};'
  echo 'typedef struct { const char *name; uint8_t argc, ret; void (*fn)(void); } ef_aot_export;'
  echo 'static const ef_aot_export EF_AOT_EXPORTS[] = {'
  # u32 Z_appZ_name(Z_app_instance_t*, u32, u32);  -> {"name", 2, 1, (void (*)(void))Z_appZ_name},
  sed -n 's/^\(u32\|void\) Z_appZ_\([a-z0-9_]*\)(Z_app_instance_t\*\(\(, u32\)*\));$/\1 \2 \3/p' "$out/app_module.h" |
    awk '{ argc = gsub(/u32/, "u32", $0) - ($1 == "u32"); printf "  {\"%s\", %d, %d, (void (*)(void))Z_appZ_%s},\n", $2, argc, $1 == "u32", $2 }'
  echo '};'
  echo '#define EF_AOT_EXPORT_COUNT (sizeof EF_AOT_EXPORTS / sizeof *EF_AOT_EXPORTS)'
} > "$out/app_aot.gen.h.tmp"
mv "$out/app_aot.gen.h.tmp" "$out/app_aot.gen.h"
