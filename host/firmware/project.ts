// The ESP-IDF project `edge-flash firmware` writes: the board's partition table (the profile's image
// partition split into the slot record and two model slots), sdkconfig.defaults, the port
// (boards/runtime/esp-idf/) and the core (boards/runtime/core/) copied into main/, the app layer, and
// with an image, the CMake lines that make `idf.py flash` write it into slot A. The app layer: wasm3
// 0.9.0 copied from the crate the addon compiles into components/wasm3/, or with engine 'aot'
// (`--aot`) build/device.wasm translated by wasm2c through boards/runtime/aot-gen.sh and our
// boards/runtime/aot/ in main/aot/ (the files boards/runtime/sources.mk names, as the Makefile's AOT
// build has them). projectFiles() is a plain function of the board and the options (tests call it);
// writeProject() puts the files on disk.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { boardByName, SECTOR, SLOT_RECORD_BYTES, type BoardProfile } from '../board/boards.ts';
import { errnoText, UserError } from '../errors.ts';
import { fmtBytes, mainTaskStack } from '../image/plan.ts';
import { fromRoot } from '../paths.ts';

export type FirmwareConsole = 'uart' | 'usb-cdc';
export const CONSOLES: readonly FirmwareConsole[] = ['uart', 'usb-cdc'];

// The chip behind a profile, by its CPU: ESP-IDF's target name and whether it has the USB-Serial-JTAG controller.
const CHIPS: Record<string, { target: string; usbSerialJtag: boolean }> = {
  'xtensa-lx6': { target: 'esp32', usbSerialJtag: false },
  'xtensa-lx7': { target: 'esp32s3', usbSerialJtag: true },
  riscv32: { target: 'esp32c3', usbSerialJtag: true },
};

export { SECTOR };
export const STATE_PARTITION = 'efstate';   // the slot record: two sectors (core/slots.h)
export const SLOT_PARTITIONS = ['model_a', 'model_b'] as const;

// wasm3's settings on the board: those tools/wasm3-footprint measured the profiles' wasm3 figures with
// (ESP32's own where the app allows them). ESP32 is not defined: wasm3's ESP32 defaults (256-slot
// function stacks, no cascaded opcodes, the interpreter in IRAM) do not run the device app.
export const WASM3_DEFINES = ['d_m3CodePageAlignSize=1024', 'd_m3MaxConstantTableSize=64', 'd_m3VerboseErrorMessages=0', 'd_m3LogOutput=0', 'd_m3Use32BitSlots=0'];
// wasm3's objects the generated firmware places in IRAM (components/wasm3/iram.lf), as wasm3's ESP-IDF port does.
export const WASM3_IRAM_OBJECTS = ['m3_exec', 'm3_core', 'm3_compile'];
// What that placement takes from internal RAM: their code goes to IRAM, their constants to DRAM (ldgen's
// `noflash`). m3_compile.o holds every operation (m3_exec.h defines them), m3_exec.o is empty. Measured at
// -O3 with wasm3 0.9.0 and WASM3_DEFINES: Debian's riscv64-unknown-elf-gcc 12.2 (rv32imc) 75,012 bytes of
// code and 9,322 of constants; xtensa-lx106-elf-gcc 12.2 (call0: a stand-in for the LX6/LX7, whose windowed
// code is of about the same size) 75,191 and 9,238. Rounded up to whole KiB with ~2 % for the windowed ABI.
// Where it lands per chip: the ESP32-C3 and -S3 take IRAM from the same SRAM as the heap, so the heap (and
// linear memory's largest block, without PSRAM) is this much smaller; the ESP32's IRAM is its own 128 KiB,
// which ESP-IDF's own IRAM code shares (the link says whether both fit: not checked here, Xtensa is
// compile-only). The planner reads these figures (firmwareIramHeapBytes) for the heap it plans.
export const WASM3_IRAM_CODE_BYTES = 75 * 1024;
export const WASM3_IRAM_DATA_BYTES = 10 * 1024;
// Internal RAM the wasm3 firmware's IRAM placement takes from the heap: code and constants on the chips
// whose IRAM is carved from the heap's SRAM (esp32c3, esp32s3), constants only on the ESP32; nothing
// under --aot (no wasm3).
export function firmwareIramHeapBytes(board: BoardProfile, engine: FirmwareEngine = 'wasm3'): number {
  if (engine === 'aot') return 0;
  return chipOf(board).target === 'esp32' ? WASM3_IRAM_DATA_BYTES : WASM3_IRAM_CODE_BYTES + WASM3_IRAM_DATA_BYTES;
}
// The crate's sources the board does not use (WASI, libc and tracer APIs: the app imports only `edge`).
const WASM3_UNUSED = /^m3_api_(uvwasi|wasi|meta_wasi|libc|tracer)\.c$/;
// With PSRAM, m3_env.c's one m3_Realloc (linear memory) goes to ef_linear_realloc (linear_psram.c).
export const WASM3_PSRAM_DEFINE = 'm3_Realloc_Impl=ef_linear_realloc';
// With PSRAM under --aot, aot_rt.c's linear memory block goes to the same ef_linear_realloc.
export const AOT_PSRAM_DEFINE = 'EF_AOT_LINEAR_REALLOC=ef_linear_realloc';

export interface FirmwarePartition { name: string; type: string; subtype: string; offset: number; size: number }

export interface FirmwareLayout {
  target: string;
  partitions: FirmwarePartition[];
  slotBytes: number;          // each model slot: the largest image the firmware takes
  imagePartition: FirmwarePartition;
}

export function chipOf(board: BoardProfile): { target: string; usbSerialJtag: boolean } {
  const chip = CHIPS[board.cpu.arch];
  if (!chip || !board.flash.imagePartition) {
    const esp = ['esp32', 'esp32s3', 'esp32s3-psram2', 'esp32s3-psram8', 'esp32c3'];
    throw new UserError(`board ${board.name} is not an ESP32-family board: firmware generates ESP-IDF projects for ${esp.join(', ')}`,
      board.flash.imagePartition === null ? 'a Raspberry Pi or the host runs the POSIX runtime: make -C boards/runtime' : undefined);
  }
  return chip;
}

// The profile's partitions with its image partition split into the slot record and two equal slots,
// each the profile's imageCapacity (host/board/boards.ts slotBytesOf: the figure every command plans with).
export function firmwareLayout(board: BoardProfile): FirmwareLayout {
  const { target } = chipOf(board);
  const image = board.flash.partitions.find((p) => p.name === board.flash.imagePartition)!;
  const slotBytes = board.imageCapacity;
  const partitions: FirmwarePartition[] = [];
  for (const p of board.flash.partitions) {
    if (p !== image) { partitions.push({ ...p }); continue; }
    partitions.push({ name: STATE_PARTITION, type: 'data', subtype: '0x41', offset: p.offset, size: SLOT_RECORD_BYTES });
    partitions.push({ name: SLOT_PARTITIONS[0], type: 'data', subtype: '0x40', offset: p.offset + 2 * SECTOR, size: slotBytes });
    partitions.push({ name: SLOT_PARTITIONS[1], type: 'data', subtype: '0x40', offset: p.offset + 2 * SECTOR + slotBytes, size: slotBytes });
  }
  return { target, partitions, slotBytes, imagePartition: { ...image } };
}

// What runs the app on the board: wasm3, or the app compiled ahead of time (`--aot`).
export type FirmwareEngine = 'wasm3' | 'aot';

export interface FirmwareOptions {
  board: BoardProfile;
  console: FirmwareConsole;
  engine?: FirmwareEngine;                       // default wasm3
  image?: { bytes: Uint8Array; name: string };   // checked by the caller (host/cli/firmware.ts)
}

export interface FirmwareProject {
  files: Map<string, string | Uint8Array>;       // project-relative path -> contents
  layout: FirmwareLayout;
  consoleLine: string;                           // 'UART0 at 115200 baud' or 'USB-Serial-JTAG'
}

const hex = (n: number) => `0x${n.toString(16)}`;
const BAUD_DEFAULT = 115200;

// Where the wasm3 sources the addon compiles are (boards/runtime/wasm3-dir.sh, the one finder).
export function wasm3SourceDir(): string {
  const r = spawnSync('sh', [fromRoot('boards', 'runtime', 'wasm3-dir.sh')], { encoding: 'utf8' });
  const dir = (r.stdout ?? '').trim();
  if (r.status !== 0 || !dir) throw new UserError(`the wasm3 sources are not found: ${(r.stderr ?? '').trim() || 'boards/runtime/wasm3-dir.sh failed'}`, 'run npm run build (cargo fetches wasm3x-sys 0.2.1)');
  return dir;
}

function readOurs(...parts: string[]): string {
  const path = fromRoot(...parts);
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${parts.join('/')}: ${errnoText(e)}`, 'the firmware is generated from the edge-flash sources: run it from the package or a checkout');
  }
}

// boards/runtime/sources.mk: the runtime's source lists by part (`NAME := words`), which the Makefile
// builds from; the project takes the same lists.
export function runtimeSources(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of readOurs('boards', 'runtime', 'sources.mk').split('\n')) {
    const m = /^([A-Z0-9_]+) := (.*)$/.exec(line);
    if (m) out[m[1]] = m[2].trim().split(/\s+/);
  }
  for (const k of ['CORE', 'APP_WASM3', 'APP_AOT', 'APP_AOT_HEADERS', 'SERVE_CORE', 'AOT_DEFS', 'AOT_FP']) {
    if (!out[k]) throw new Error(`boards/runtime/sources.mk has no ${k}`);
  }
  return out;
}

// The translated app: build/device.wasm through aot-gen.sh (wasm2c) into a scratch folder; its four files.
export const AOT_GENERATED = ['app_module.c', 'app_module.h', 'app_aot.gen.h', 'wasm-rt.h'];
export function translateApp(): Map<string, Buffer> {
  const wasm = fromRoot('build', 'device.wasm');
  if (!existsSync(wasm)) throw new UserError(`missing ${wasm}: --aot translates the device app`, 'run `npm run build` first');
  if (spawnSync('sh', ['-c', 'command -v wasm2c'], { stdio: 'ignore' }).status !== 0) {
    throw new UserError('--aot needs wasm2c, which is not on PATH: it is in the wabt package', 'on Debian or Ubuntu: sudo apt install wabt');
  }
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-aot-'));
  try {
    const r = spawnSync('sh', [fromRoot('boards', 'runtime', 'aot-gen.sh'), wasm, dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new UserError(`translating the app failed: ${(r.stderr ?? '').trim().split('\n').pop() || `aot-gen.sh exited ${r.status}`}`);
    return new Map(AOT_GENERATED.map((f) => [f, readFileSync(join(dir, f))]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The core files an app layer needs (sources.mk: CORE, the layer's core/ files, SERVE_CORE; every core
// header), as they are, with frame.h's include of the generated frame table pointed at its copy beside it.
const FRAME_TABLE_INCLUDE = '#include "../../../test/vectors/protocol/protocol.gen.h"';
function coreFiles(engine: FirmwareEngine): Map<string, string> {
  const out = new Map<string, string>();
  const src = runtimeSources();
  const wanted = new Set([...src.CORE, ...(engine === 'aot' ? src.APP_AOT : src.APP_WASM3), ...src.SERVE_CORE].filter((f) => f.startsWith('core/')).map((f) => f.slice('core/'.length)));
  const dir = fromRoot('boards', 'runtime', 'core');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.h') || wanted.has(n)).sort()) {
    let text = readOurs('boards', 'runtime', 'core', f);
    if (text.includes(FRAME_TABLE_INCLUDE)) text = text.replace(FRAME_TABLE_INCLUDE, '#include "protocol.gen.h"');
    else if (text.includes('protocol.gen.h')) throw new Error(`boards/runtime/core/${f} includes protocol.gen.h in a way the generator does not know`);
    out.set(`main/core/${f}`, text);
  }
  out.set('main/core/protocol.gen.h', readOurs('test', 'vectors', 'protocol', 'protocol.gen.h'));
  return out;
}

export const PORT_FILES = ['main.c', 'console.c', 'console.h', 'partition_storage.c', 'partition_storage.h'];

export function projectFiles(o: FirmwareOptions): FirmwareProject {
  const { board } = o;
  const engine = o.engine ?? 'wasm3';
  const layout = firmwareLayout(board);
  const chip = chipOf(board);
  if (o.console === 'usb-cdc' && !chip.usbSerialJtag) {
    throw new UserError(`board ${board.name} (${layout.target}) has no USB-Serial-JTAG controller: --console usb-cdc needs an esp32s3 or esp32c3`, 'use --console uart (UART0, the board\'s USB-UART bridge)');
  }
  const psram = (board.memory.psram ?? 0) > 0;
  const baud = board.serial.baud || BAUD_DEFAULT;   // the profile's one line rate: the protocol runs at it
  const consoleLine = o.console === 'uart' ? `UART0 at ${baud} baud` : 'USB-Serial-JTAG';
  const files = new Map<string, string | Uint8Array>();
  const gen = `generated by edge-flash firmware --board ${board.name} --console ${o.console}${engine === 'aot' ? ' --aot' : ''}`;

  files.set('CMakeLists.txt', `# ${gen}
cmake_minimum_required(VERSION 3.16)
include($ENV{IDF_PATH}/tools/cmake/project.cmake)
project(edge-flash)
`);

  files.set('partitions.csv', `# ${gen}: ${board.title}
# The profile's '${layout.imagePartition.name}' partition (${hex(layout.imagePartition.offset)}, ${fmtBytes(layout.imagePartition.size)}) holds the slot record and two model slots.
# Name, Type, SubType, Offset, Size, Flags
${layout.partitions.map((p) => `${p.name}, ${p.type}, ${p.subtype}, ${hex(p.offset)}, ${hex(p.size)},`).join('\n')}
`);

  files.set('sdkconfig.defaults', sdkconfig(board, layout, o.console, baud, psram, engine, gen));

  // main/: the port, its board figures, the core
  const port = new Map(PORT_FILES.map((f) => [f, readOurs('boards', 'runtime', 'esp-idf', f)]));
  for (const [f, text] of port) files.set(`main/${f}`, text);
  files.set('main/board_config.h', boardConfig(board, o.console, baud, psram, gen));
  const core = coreFiles(engine);
  for (const [f, text] of core) files.set(f, text);
  const mainSources = [...PORT_FILES.filter((f) => f.endsWith('.c')), ...[...core.keys()].filter((f) => f.endsWith('.c')).map((f) => f.slice('main/'.length))];
  const driverSelect = consoleDriverCmake(o.console);
  let mainCmake: string;
  if (engine === 'aot') {
    // the AOT layer (sources.mk's APP_AOT beyond core/) and the translated app beside it in main/aot/
    const src = runtimeSources();
    for (const f of [...src.APP_AOT, ...src.APP_AOT_HEADERS].filter((x) => x.startsWith('aot/'))) files.set(`main/${f}`, readOurs('boards', 'runtime', f));
    for (const [f, bytes] of translateApp()) files.set(`main/aot/${f}`, bytes);
    if (psram) files.set('main/linear_psram.c', readOurs('boards', 'runtime', 'esp-idf', 'linear_psram.c'));
    const aotSources = [...src.APP_AOT.filter((x) => x.startsWith('aot/')), 'aot/app_module.c', ...(psram ? ['linear_psram.c'] : [])];
    mainCmake = `# ${gen}
${driverSelect}
# The app compiled ahead of time: aot/app_module.c is build/device.wasm translated by wasm2c
# (boards/runtime/aot-gen.sh), aot/app_aot.c and aot/aot_rt.c run it behind core/app.h; no wasm3.
idf_component_register(SRCS ${[...mainSources, ...aotSources].map((s) => `"${s}"`).join(' ')}
                       INCLUDE_DIRS "."
                       PRIV_REQUIRES esp_partition \${EF_CONSOLE_DRIVER} esp_system heap)
# every load and store bounds-checked (no MMU for guard pages), as boards/runtime/sources.mk says for every AOT build
target_compile_definitions(\${COMPONENT_LIB} PRIVATE ${defines(src.AOT_DEFS).join(' ')})
# the translated code: no fused multiply-adds (${src.AOT_FP.join(' ')}: the tokens would change), wasm2c's warnings off
set_source_files_properties(aot/app_module.c PROPERTIES COMPILE_OPTIONS "${[...src.AOT_FP, '-w'].join(';')}")
${psram ? `# linear memory in PSRAM: aot_rt.c's one block through heap_caps (linear_psram.c)
set_source_files_properties(aot/aot_rt.c PROPERTIES COMPILE_DEFINITIONS "${AOT_PSRAM_DEFINE}")
` : ''}`;
  } else {
    mainCmake = `# ${gen}
${driverSelect}
idf_component_register(SRCS ${mainSources.map((s) => `"${s}"`).join(' ')}
                       INCLUDE_DIRS "."
                       PRIV_REQUIRES wasm3 esp_partition \${EF_CONSOLE_DRIVER} esp_system heap)
`;
  }
  if (o.image) {
    mainCmake += `
# \`idf.py flash\` also writes the model: the image into slot A, and an erased slot record (the firmware
# then records the image in slot A as a commit would, boots it on trial and confirms it).
esptool_py_flash_to_partition(flash "${STATE_PARTITION}" "\${CMAKE_CURRENT_LIST_DIR}/../model/erased-slot-record.bin")
esptool_py_flash_to_partition(flash "${SLOT_PARTITIONS[0]}" "\${CMAKE_CURRENT_LIST_DIR}/../model/${o.image.name}")
`;
    files.set(`model/${o.image.name}`, o.image.bytes);
    files.set('model/erased-slot-record.bin', new Uint8Array(2 * SECTOR).fill(0xff));
  }
  files.set('main/CMakeLists.txt', mainCmake);
  if (engine === 'wasm3') wasm3Component(files, psram, gen);
  files.set('README.md', readme(board, layout, o, consoleLine, psram, gen));
  return { files, layout, consoleLine };
}

// The main task's stack (CONFIG_ESP_MAIN_TASK_STACK_SIZE) and what it takes from the heap before app_main:
// one figure with the planner's (host/image/plan.ts, which counts it by the profile's firmware).
export { firmwareHeapBeforeApp, mainTaskStack, RUNTIME_STACK_BYTES, TASK_OVERHEAD_BYTES } from '../image/plan.ts';

// The ESP-IDF versions the generated projects are checked against: ESP-IDF's own CMake configure and
// Kconfig, then every project C file compiled with the command lines ESP-IDF writes (tools/esp-idf-check.ts,
// test/esp-idf.test.ts). v5.1 is the oldest the port's calls exist in.
export const IDF_CHECKED = ['v5.1.7', 'v5.5.5', 'v6.0.2'] as const;

// The console's driver component by ESP-IDF version, decided by ESP-IDF's CMake itself (IDF_VERSION_MAJOR
// and _MINOR come from tools/cmake/version.cmake, in the requirements pass too): before v5.3 the UART and
// USB-Serial-JTAG drivers are in `driver`; from v5.3 they are esp_driver_uart and esp_driver_usb_serial_jtag,
// which v6.0's `driver` no longer brings.
function consoleDriverCmake(con: FirmwareConsole): string {
  const own = con === 'uart' ? 'esp_driver_uart' : 'esp_driver_usb_serial_jtag';
  return `# the console's driver: in \`driver\` before ESP-IDF v5.3, its own component from v5.3 (v6.0's \`driver\` no longer brings it)
if("\${IDF_VERSION_MAJOR}.\${IDF_VERSION_MINOR}" VERSION_LESS "5.3")
  set(EF_CONSOLE_DRIVER driver)
else()
  set(EF_CONSOLE_DRIVER ${own})
endif()`;
}

// `-DNAME=V` flags as CMake definitions (NAME=V)
const defines = (flags: string[]) => flags.map((f) => f.replace(/^-D/, ''));

// components/wasm3: the crate's sources as they are, and how ESP-IDF builds them
function wasm3Component(files: Map<string, string | Uint8Array>, psram: boolean, gen: string): void {
  const w3 = wasm3SourceDir();
  const w3files = readdirSync(w3).filter((f) => /\.[ch]$/.test(f) && !WASM3_UNUSED.test(f)).sort();
  for (const f of w3files) files.set(`components/wasm3/source/${f}`, readFileSync(join(w3, f)));
  const license = join(dirname(w3), 'LICENSE');
  if (existsSync(license)) files.set('components/wasm3/LICENSE', readFileSync(license));
  if (psram) files.set('components/wasm3/linear_psram.c', readOurs('boards', 'runtime', 'esp-idf', 'linear_psram.c'));
  const w3srcs = [...w3files.filter((f) => f.endsWith('.c')).map((f) => `source/${f}`), ...(psram ? ['linear_psram.c'] : [])];
  files.set('components/wasm3/iram.lf', `# ${gen}
# wasm3's interpreter, its core and its compiler in IRAM (ESP-IDF's linker fragments: (noflash) is IRAM
# for code), as wasm3's own ESP-IDF port places them: the interpreter's hot loop does not wait on the
# flash cache. It takes ${WASM3_IRAM_OBJECTS.join(', ')} out of flash (see WASM3_IRAM in host/firmware/project.ts).
[mapping:wasm3_iram]
archive: libwasm3.a
entries:
${WASM3_IRAM_OBJECTS.map((o) => `  ${o} (noflash)`).join('\n')}
`);
  files.set('components/wasm3/CMakeLists.txt', `# ${gen}
# wasm3 ${wasm3Version(w3)}: the sources of the wasm3x-sys 0.2.1 crate, which edge-flash's host addon compiles,
# so the board runs the interpreter the host measured. Its settings are public: core/app.c reads wasm3's structs.
# The interpreter runs from IRAM, as wasm3's own ESP-IDF port has it (M3_IN_IRAM, and iram.lf placing
# m3_exec, m3_core and m3_compile in IRAM), not from flash through the cache.
idf_component_register(SRCS ${w3srcs.map((s) => `"${s}"`).join(' ')}
                       INCLUDE_DIRS "source"
                       PRIV_REQUIRES heap
                       LDFRAGMENTS "iram.lf")
target_compile_definitions(\${COMPONENT_LIB} PUBLIC ${WASM3_DEFINES.join(' ')} M3_IN_IRAM)
target_compile_options(\${COMPONENT_LIB} PRIVATE -O3 -w)
${psram ? `# linear memory in PSRAM: m3_env.c's one m3_Realloc is the linear memory's (linear_psram.c)
set_source_files_properties(source/m3_env.c PROPERTIES COMPILE_DEFINITIONS "${WASM3_PSRAM_DEFINE}")
` : ''}`);
}

function wasm3Version(dir: string): string {
  const m = /#define M3_VERSION\s+"([^"]+)"/.exec(readFileSync(join(dir, 'wasm3.h'), 'utf8'));
  return m ? m[1] : '(version unknown)';
}

function sdkconfig(board: BoardProfile, layout: FirmwareLayout, con: FirmwareConsole, baud: number, psram: boolean, engine: FirmwareEngine, gen: string): string {
  const flashMiB = Math.round(board.flash.size / (1 << 20));
  const lines = [
    `# ${gen}: ${board.title}`,
    `CONFIG_IDF_TARGET="${layout.target}"`,
    `CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_${board.cpu.clockMHz}=y`,
    `CONFIG_ESPTOOLPY_FLASHSIZE_${flashMiB}MB=y`,
    'CONFIG_ESPTOOLPY_FLASHMODE_QIO=y',
    'CONFIG_ESPTOOLPY_FLASHFREQ_80M=y',
    'CONFIG_PARTITION_TABLE_CUSTOM=y',
    'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions.csv"',
    'CONFIG_PARTITION_TABLE_FILENAME="partitions.csv"',
    'CONFIG_COMPILER_OPTIMIZATION_PERF=y',
    engine === 'aot'
      ? `# the translated app runs on this task's stack: the native stack the AOT plan counts (${fmtBytes(board.wasm3.nativeStack)}, the profile's figure) and 16 KiB for the runtime`
      : `# wasm3's native stack (${fmtBytes(board.wasm3.nativeStack)}, the profile's figure) and 16 KiB for the runtime`,
    `CONFIG_ESP_MAIN_TASK_STACK_SIZE=${mainTaskStack(board)}`,
    '# the console: ESP-IDF logs on UART0 at the same rate; only errors, so that frames are not interleaved',
    // ESP-IDF takes a console baud rate only with a custom console UART (the default one is 115200)
    ...(baud === BAUD_DEFAULT ? ['CONFIG_ESP_CONSOLE_UART_DEFAULT=y'] : ['CONFIG_ESP_CONSOLE_UART_CUSTOM=y', 'CONFIG_ESP_CONSOLE_UART_NUM=0', `CONFIG_ESP_CONSOLE_UART_BAUDRATE=${baud}`]),
    'CONFIG_LOG_DEFAULT_LEVEL_ERROR=y',
  ];
  if (con === 'usb-cdc') lines.push('# the protocol owns USB-Serial-JTAG: no log output there', 'CONFIG_ESP_CONSOLE_SECONDARY_NONE=y');
  lines.push(
    '# the task watchdog: the runtime\'s task feeds it (each loop pass, each frame it sends); idle tasks starve during generation',
    'CONFIG_ESP_TASK_WDT_EN=y',
    'CONFIG_ESP_TASK_WDT_INIT=y',
    'CONFIG_ESP_TASK_WDT_TIMEOUT_S=30',
    '# CONFIG_ESP_TASK_WDT_CHECK_IDLE_TASK_CPU0 is not set',
    ...(board.cpu.cores > 1 ? ['# CONFIG_ESP_TASK_WDT_CHECK_IDLE_TASK_CPU1 is not set'] : []),
  );
  if (psram) {
    const octal = /octal/i.test(board.title);
    lines.push(
      `# PSRAM (${fmtBytes(board.memory.psram ?? 0)}, ${octal ? 'octal' : 'quad'}): linear memory only, through heap_caps (linear_psram.c)`,
      'CONFIG_SPIRAM=y',
      octal ? 'CONFIG_SPIRAM_MODE_OCT=y' : 'CONFIG_SPIRAM_MODE_QUAD=y',
      'CONFIG_SPIRAM_SPEED_80M=y',
      'CONFIG_SPIRAM_USE_CAPS_ALLOC=y',
    );
  } else if (layout.target !== 'esp32c3') {   // the ESP32-C3 has no PSRAM interface: Kconfig has no SPIRAM there
    lines.push('# CONFIG_SPIRAM is not set');
  }
  return lines.join('\n') + '\n';
}

function boardConfig(board: BoardProfile, con: FirmwareConsole, baud: number, psram: boolean, gen: string): string {
  const accepts = board.accepts.map((a) => `${boardByName(a).id}, `).join('');
  return `/* ${gen}: the board's figures for the port (boards/runtime/esp-idf/) */
#ifndef EF_BOARD_CONFIG_H
#define EF_BOARD_CONFIG_H
#define EF_BOARD_NAME "${board.name}"
#define EF_BOARD_ID ${board.id}
#define EF_BOARD_ACCEPTS ${accepts}
#define EF_CONSOLE_USB_SERIAL_JTAG ${con === 'usb-cdc' ? 1 : 0}
#define EF_CONSOLE_BAUD ${baud}
#define EF_WASM_STACK_BYTES ${board.wasm3.stack}
#define EF_LINEAR_CAPS (${psram ? 'MALLOC_CAP_SPIRAM' : 'MALLOC_CAP_INTERNAL'} | MALLOC_CAP_8BIT)
#define EF_STATE_PARTITION "${STATE_PARTITION}"
#define EF_SLOT_A_PARTITION "${SLOT_PARTITIONS[0]}"
#define EF_SLOT_B_PARTITION "${SLOT_PARTITIONS[1]}"
#endif
`;
}

function readme(board: BoardProfile, layout: FirmwareLayout, o: FirmwareOptions, consoleLine: string, psram: boolean, gen: string): string {
  const t = layout.target;
  const port = o.console === 'uart' ? '/dev/ttyUSB0' : '/dev/ttyACM0';
  const aot = o.engine === 'aot';
  return `# edge-flash firmware for ${board.name}

${board.title}. This ESP-IDF project was ${gen}.
It runs the edge-flash device runtime: the serial protocol on ${consoleLine}, two model slots in
flash (\`${SLOT_PARTITIONS[0]}\`, \`${SLOT_PARTITIONS[1]}\`, ${fmtBytes(layout.slotBytes)} each) read as memory-mapped flash,
the slot record in \`${STATE_PARTITION}\`, and the model's app ${aot ? 'compiled ahead of time (below)' : 'in wasm3'} with linear memory in ${psram ? 'PSRAM' : 'internal RAM'}.

Checked against ESP-IDF ${IDF_CHECKED.join(', ')}: edge-flash configures every variant of this project
with ESP-IDF's own CMake and Kconfig and compiles every C file of it with the command lines ESP-IDF
writes (Debian's cross compilers standing in for Espressif's; \`npx tsx tools/esp-idf-check.ts\` in an
edge-flash checkout), and runs its storage and slot code on ESP-IDF's \`linux\` target. Nothing in it has
been linked for or run on a real ${t} yet; its C also runs on a PC against stand-ins for the ESP-IDF
calls it uses (edge-flash's test/firmware.test.ts).

## Build and flash (ESP-IDF ${IDF_CHECKED[0]} to ${IDF_CHECKED[IDF_CHECKED.length - 1]})

    . $IDF_PATH/export.sh
    idf.py set-target ${t}
    idf.py build
    idf.py -p ${port} flash
    idf.py -p ${port} monitor      # the banner; Ctrl-] leaves

${o.image ? `\`idf.py flash\` also writes the model image \`model/${o.image.name}\` into slot A: the board boots it
on trial, checks it and confirms it. To change the model later, without rebuilding:

    npx edge-flash flash OTHER.efimg --port ${port}
` : `No model is flashed with it: upload one over the serial line,

    npx edge-flash flash MODEL.efimg --port ${port}
`}
Then talk to it:

    npx edge-flash chat --port ${port}

## Layout

| partition | offset | size |
|---|---|---|
${layout.partitions.map((p) => `| ${p.name} | ${hex(p.offset)} | ${fmtBytes(p.size)} |`).join('\n')}

${aot ? `\`main/aot/app_module.c\` is the edge-flash device app (build/device.wasm) translated to C by wabt's
wasm2c, every load and store bounds-checked (no MMU guard pages on a ${t}); \`main/aot/wasm-rt.h\` is
wabt's header for it (Apache-2.0), \`main/aot/aot_rt.c\` edge-flash's runtime for it and
\`main/aot/app_aot.c\` the app layer that runs it. This firmware runs only that app: an image packed
with another edge-flash version's app fails its boot self-test (regenerate the project with the
edge-flash that packed it). \`main/core/\` is edge-flash's device runtime.
` : `\`components/wasm3/\` is wasm3 0.9.0 as the wasm3x-sys 0.2.1 crate ships it (MIT, see its LICENSE), the
interpreter edge-flash's host runs and measured; \`main/core/\` is edge-flash's device runtime.
`}`;
}

// Writes the project into dir: dir must be missing or empty, unless force (then the files are overwritten;
// a file that already holds the same bytes is left alone, so that idf.py's build of it stays valid).
export function writeProject(dir: string, files: Map<string, string | Uint8Array>, force: boolean): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new UserError(`${dir} is a file, not a directory`);
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`cannot read ${dir}: ${errnoText(e)}`);
  }
  if (entries.length && !force) throw new UserError(`${dir} exists and is not empty: pass --force to write the project over it`);
  try {
    for (const [rel, data] of files) {
      const path = join(dir, rel);
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      if (existsSync(path) && Buffer.compare(readFileSync(path), bytes) === 0) continue;
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, bytes);
    }
  } catch (e) {
    throw new UserError(`cannot write the project into ${dir}: ${errnoText(e)}`);
  }
}
