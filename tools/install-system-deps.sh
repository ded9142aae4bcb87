#!/usr/bin/env bash
# The system packages the build and the tests need on a Debian or Ubuntu machine, installed where
# missing (as root; otherwise one line naming the packages and the command). The table of tools,
# checks, packages and reasons is tools/system-deps.mjs (`node tools/system-deps.mjs table` prints
# it); `npm test` runs the same set-up first, so this script is only for installing ahead of time.
# Rust (cargo >= 1.85) comes from rustup, not from here.
set -euo pipefail
exec node "$(dirname "$0")/system-deps.mjs" install
