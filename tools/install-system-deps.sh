#!/usr/bin/env bash
# System packages the build needs on a Debian machine (and `bench --peers`: the wasm32-wasi toolchain; the AOT runtime: wabt): a C compiler (native benchmark baseline, and
# wasm3's C sources), clang (builds wasm3 into faster code than gcc), libclang (bindgen, for the
# wasm3-node addon), and the aarch64 and armhf cross compilers with qemu-user (the Raspberry Pi
# runtime's cross builds and their tests). Installs only what is missing.
# Rust (cargo >= 1.85) comes from rustup, not from here: see the README's prerequisites.
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(build-essential)
# clang compiles wasm3's interpreter into faster code than gcc (tools/build.mjs falls back to cc)
command -v clang >/dev/null || need+=(clang)
# bindgen needs both the library and clang's own headers (stddef.h...), which libclang-dev brings
{ ldconfig -p 2>/dev/null | grep 'libclang[-.0-9]*\.so' >/dev/null && compgen -G '/usr/lib/llvm-*/lib/clang/*/include/stddef.h' >/dev/null; } \
  || need+=(libclang-dev)
# test/firmware.test.ts reads the generated ESP-IDF projects' CMake files with cmake -P
command -v cmake >/dev/null || need+=(cmake)
# the C headers' test compiles them for 32-bit too (boards are 32-bit): on x86-64 the versioned
# gcc-N-multilib of the installed gcc, because Debian's gcc-multilib conflicts with the cross compilers below
if [ "$(uname -m)" = x86_64 ] && ! echo 'int main(void){return 0;}' | cc -m32 -x c - -o /dev/null 2>/dev/null; then
  need+=("gcc-$(gcc -dumpversion 2>/dev/null | cut -d. -f1 | grep . || echo 12)-multilib")
fi
# the Raspberry Pi runtime's cross builds (make -C boards/runtime cross-aarch64 cross-armhf) and
# qemu-user, which runs them in test/runtime-cross.test.ts (qemu-user has qemu-aarch64 and qemu-arm)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
command -v arm-linux-gnueabihf-gcc >/dev/null || need+=(gcc-arm-linux-gnueabihf)
{ command -v qemu-aarch64 >/dev/null && command -v qemu-arm >/dev/null; } || need+=(qemu-user)
# `bench --peers` builds llama2.c's run.c to wasm32-wasi: clang's wasm32 target needs wasm-ld (lld),
# wasi-libc and the wasm32 compiler-rt builtins (the versionless packages follow Debian's clang)
if ! echo 'int main(void){return 0;}' | clang --target=wasm32-wasi --sysroot=/usr -O2 -x c - -o /dev/null 2>/dev/null; then
  need+=(lld wasi-libc libclang-rt-dev-wasm32)
fi
# `bench --isa rv32imc` (test/bench-isa.test.ts) builds bare-metal RV32IMC programs: Debian's riscv64-unknown-elf gcc and picolibc
command -v riscv64-unknown-elf-gcc >/dev/null || need+=(gcc-riscv64-unknown-elf)
[ -f /usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs ] || need+=(picolibc-riscv64-unknown-elf)
# the AOT runtime (`make -C boards/runtime aot`): wasm2c translates the app to C; wasm-rt.h is its header
{ command -v wasm2c >/dev/null && [ -f /usr/include/wasm-rt.h ]; } || need+=(wabt)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "install-system-deps: please install: ${need[*]}" >&2
    exit 1
  fi
fi
if ! command -v cargo >/dev/null; then
  echo "install-system-deps: no cargo on PATH: the wasm3 addon will not build (install Rust >= 1.85 with rustup)" >&2
elif ! cargo --version | awk '{ split($2, v, "."); exit !(v[1] > 1 || (v[1] == 1 && v[2] >= 85)) }'; then
  echo "install-system-deps: $(cargo --version) is older than 1.85: the wasm3 addon will not build (rustup update)" >&2
fi
