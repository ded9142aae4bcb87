# The device runtime's sources, by part: the Makefile builds from these lists, and `edge-flash firmware`
# (host/firmware/project.ts) reads them to put the same files into an ESP-IDF project. One `NAME := words`
# a line, paths relative to boards/runtime/, no make functions (the generator reads this file as text).
# The core every build has: images, storage, slots, their checks.
CORE := core/crc32.c core/sha256.c core/ed25519.c core/json.c core/image.c core/storage.c core/slots.c
# The app layer, one of two behind core/app.h: wasm3 interprets the image's app ...
APP_WASM3 := core/app.c core/imports.c
# ... or the app translated ahead of time (aot-gen.sh's output beside it: app_module.c, app_module.h, app_aot.gen.h, wasm-rt.h).
APP_AOT := aot/app_aot.c aot/aot_rt.c core/imports.c
APP_AOT_HEADERS := aot/aot_rt.h
# The protocol a board serves, on any port.
SERVE_CORE := core/chat.c core/frame.c core/protocol.c
# The POSIX port (a Raspberry Pi, this machine).
POSIX := posix/main.c posix/flash_file.c posix/serial.c posix/line.c
# The bare-metal ESP32-C3 port (riscv64-unknown-elf-gcc, picolibc): start-up, chip, flash through the ROM.
BAREMETAL_ESP32C3 := baremetal/esp32c3/main.c baremetal/esp32c3/chip.c baremetal/esp32c3/flash_storage.c baremetal/esp32c3/linear.c baremetal/esp32c3/start.S
# How the translated app is compiled wherever it is: every load and store bounds-checked, no guard pages
# (a board has no MMU), and no fused multiply-adds (they round once where wasm rounds twice: the tokens change).
AOT_DEFS := -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0
AOT_FP := -ffp-contract=off
