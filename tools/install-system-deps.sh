#!/usr/bin/env bash
# System packages the build needs on a Debian machine (the wasm3 addon's libclang, a C compiler for
# the native benchmark baseline). Installs only what is missing; a no-op when all are present.
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(build-essential)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "install-system-deps: please install: ${need[*]}" >&2
    exit 1
  fi
fi
