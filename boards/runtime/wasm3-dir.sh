#!/bin/sh
# Prints the wasm3 source directory of the wasm3x-sys crate the addon (tools/wasm3-node) is locked
# to, so that the runtime compiles the very sources the addon does. cargo metadata first (it knows
# CARGO_HOME and the locked version), the default registry path where cargo is missing.
here=$(dirname "$0")
manifest="$here/../../tools/wasm3-node/Cargo.toml"
if command -v cargo >/dev/null 2>&1; then
  dir=$(cargo metadata --manifest-path "$manifest" --format-version 1 --locked --offline 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s).packages.find(p=>p.name==="wasm3x-sys");if(p)process.stdout.write(require("path").dirname(p.manifest_path))})' 2>/dev/null)
fi
if [ -z "$dir" ]; then
  for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasm3x-sys-0.2.1; do [ -d "$d" ] && dir=$d; done
fi
[ -n "$dir" ] && [ -f "$dir/wasm3/source/wasm3.h" ] || { echo "wasm3x-sys 0.2.1 sources not found: run 'cargo fetch' in tools/wasm3-node" >&2; exit 1; }
echo "$dir/wasm3/source"
