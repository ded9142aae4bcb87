#!/usr/bin/env bash
# System packages the build needs on a Debian machine: a C compiler (native benchmark baseline, and
# wasm3's C sources) and libclang (bindgen, for the wasm3-node addon). Installs only what is missing.
# Rust (cargo >= 1.85) comes from rustup, not from here: see the README's prerequisites.
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(build-essential)
ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so' || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "install-system-deps: please install: ${need[*]}" >&2
    exit 1
  fi
fi
command -v cargo >/dev/null || echo "install-system-deps: no cargo on PATH: the wasm3 addon will not build (install Rust with rustup)" >&2
