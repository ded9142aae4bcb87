// `edge-flash firmware --board B -o DIR [--image IMAGE] [--console uart|usb-cdc] [--aot] [--force]`:
// writes an ESP-IDF project for the board (host/firmware/project.ts). With --image, the image is checked
// as `verify --board` checks it (every check a board makes, then the planner's fit: the AOT plan with
// --aot) and must fit one model slot; with --aot its app must be the one compiled in. A refusal names
// the numbers and writes nothing.
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { boardByName, withFirmware } from '../board/boards.ts';
import { UserError } from '../errors.ts';
import { baremetalLayout, readBaremetalFirmware, type BaremetalEngine } from '../firmware/baremetal.ts';
import { CONSOLES, firmwareLayout, IDF_CHECKED, projectFiles, writeProject, type FirmwareConsole, type FirmwareEngine } from '../firmware/project.ts';
import { deviceApp } from '../image/pack.ts';
import { imageToModel } from '../image/model.ts';
import { aotCodeFor, appPartition, fmtBytes } from '../image/plan.ts';
import { readImage } from '../image/read.ts';
import { planImageOn, shortfall } from './fit.ts';
import { readImageFile } from './inspect.ts';

export function registerFirmware(program: Command): void {
  program
    .command('firmware')
    .description('write an ESP-IDF project for an ESP32-family board: the device runtime, wasm3 (or with --aot the app compiled ahead of time), the partition table, and optionally a model image that `idf.py flash` writes too')
    .requiredOption('--board <name>', 'esp32, esp32s3, esp32s3-psram2, esp32s3-psram8 or esp32c3')
    .requiredOption('-o, --out <dir>', 'the project directory (missing or empty, unless --force); with --bare-metal the firmware file')
    .option('--image <path>', 'an image for this board: checked (verify, fit, slot size) and flashed into slot A by `idf.py flash`')
    .option('--console <line>', 'the serial line the protocol runs on: uart (UART0, the USB-UART bridge) or usb-cdc (the chip\'s USB-Serial-JTAG port); default: the profile\'s')
    .option('--aot', 'run the app compiled ahead of time instead of wasm3: build/device.wasm translated by wasm2c (wabt) into the project; no interpreter heap (plan --engine aot)')
    .option('--bare-metal', 'esp32c3: no ESP-IDF project; -o FILE gets the prebuilt bare-metal firmware (wasm3, or the AOT app with --aot) that `flash --rom --firmware FILE` writes at 0x0 (verified in Espressif\'s QEMU, not on a chip)')
    .option('--force', 'write into a directory that is not empty (generated files are overwritten)')
    .addHelpText('after', `
Then: cd DIR && idf.py set-target <chip> && idf.py build && idf.py flash && edge-flash chat --port PORT
(the generated README.md has the steps). Checked against ESP-IDF ${IDF_CHECKED.join(', ')}: every variant
configured with ESP-IDF's own CMake and Kconfig and compiled with its command lines (tools/esp-idf-check.ts),
the storage layer run on ESP-IDF's linux target; not yet on a real board.
--aot: the app ahead of time (several times wasm3's decode speed, more linear memory for the
model: plan --engine aot); wasm2c must be installed (Debian: wabt), and the firmware then runs only
images of this edge-flash's app (an --image with another app is refused here).`)
    .action((o) => {
      const named = boardByName(o.board);
      if (o.bareMetal) return writeBaremetal(o.out, named, o.aot ? 'aot' : 'wasm3', !!o.force, o.image, o.console);
      // an ESP-IDF project: the planner's figures are the ESP-IDF firmware's (the main task's stack from the heap)
      const board = named.firmwares.includes('esp-idf') ? withFirmware(named, 'esp-idf') : named;
      const layout = firmwareLayout(board);
      const con = (o.console ?? (board.serial.transport === 'uart' ? 'uart' : 'usb-cdc')) as FirmwareConsole;
      if (!CONSOLES.includes(con)) throw new UserError(`--console must be uart or usb-cdc, got '${o.console}'`);
      const engine: FirmwareEngine = o.aot ? 'aot' : 'wasm3';
      // the AOT code lives in the app partition (the planner's estimate of it, as plan --engine aot counts it)
      const part = appPartition(board);
      const aotCode = engine === 'aot' ? aotCodeFor(deviceApp().byteLength) : 0;
      if (part && aotCode > part.size) throw new UserError(`the AOT app's code (~${fmtBytes(aotCode)}) does not fit ${board.name}'s app partition '${part.name}' (${fmtBytes(part.size)})`, 'leave out --aot');
      let image: { bytes: Uint8Array; name: string } | undefined;
      if (o.image) {
        const bytes = readImageFile(o.image);
        checkImage(o.image, bytes, board, layout.slotBytes, layout.imagePartition.size, engine);
        image = { bytes, name: basename(o.image).replace(/[^A-Za-z0-9._-]/g, '_') };
      }
      const p = projectFiles({ board, console: con, engine, image });
      writeProject(o.out, p.files, !!o.force);
      const app = engine === 'aot' ? `the app compiled ahead of time, ~${fmtBytes(aotCode)} of code in '${part?.name}' (${fmtBytes(part?.size ?? 0)})` : 'wasm3';
      process.stdout.write(`${o.out}: ESP-IDF project for ${board.name} (${p.consoleLine}; ${app}; 2 model slots of ${fmtBytes(layout.slotBytes)}` +
        `${image ? `; ${image.name} in slot A` : ''}): cd ${o.out} && idf.py set-target ${layout.target} && idf.py build flash\n`);
    });
}

// `firmware --bare-metal`: the prebuilt firmware file as it is (no project, nothing to build).
function writeBaremetal(out: string, board: ReturnType<typeof boardByName>, engine: BaremetalEngine, force: boolean, image?: string, con?: string): void {
  if (image) throw new UserError('firmware --bare-metal takes no --image: `flash --rom --firmware FILE --image IMAGE` writes both', `edge-flash flash --rom --board ${board.name} --port PORT --firmware ${out} --image IMAGE`);
  if (con && con !== 'uart') throw new UserError(`firmware --bare-metal: the console is UART0 (--console ${con} is not built in)`);
  const layout = baremetalLayout(board);
  const fw = readBaremetalFirmware(engine, board);
  if (existsSync(out) && !force) throw new UserError(`${out} exists (--force replaces it)`);
  writeFileSync(out, fw.bytes);
  process.stdout.write(`${out}: ${board.name} bare-metal firmware (${engine}; ${fw.bytes.byteLength} bytes at 0x${layout.firmware.toString(16)}; ` +
    `2 model slots of ${fmtBytes(layout.slotBytes)} from 0x${layout.region.toString(16)}): edge-flash flash --rom --board ${board.name} --port PORT --firmware ${out} --image IMAGE\n`);
}

// The image runs on the board (verify's checks), fits it (the planner, for the engine), and fits one
// slot; under --aot its app is the one translated into the firmware, which refuses any other at boot.
function checkImage(path: string, bytes: Uint8Array, board: ReturnType<typeof boardByName>, slotBytes: number, partitionBytes: number, engine: FirmwareEngine): void {
  if (bytes.byteLength > slotBytes) {
    throw new UserError(`${path}: the image is ${bytes.byteLength} bytes (${fmtBytes(bytes.byteLength)}); a model slot of the ${board.name} firmware holds ${slotBytes} (${fmtBytes(slotBytes)}: two slots share the ${fmtBytes(partitionBytes)} partition)`,
      'pack a smaller model or quantization (see `edge-flash plan`)');
  }
  try {
    const img = readImage(bytes, { board });
    if (engine === 'aot') {
      const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
      const theirs = sha(img.app), ours = sha(deviceApp());
      if (theirs !== ours) {
        throw new UserError(`its app (sha256 ${theirs.slice(0, 16)}...) is not build/device.wasm (${ours.slice(0, 16)}...), the app --aot compiles into the firmware: the board would refuse the image at boot`,
          'pack the image with this edge-flash, or leave out --aot (wasm3 runs any device app)');
      }
    }
    const plan = planImageOn(img, imageToModel(img, path), board, engine);
    if ('unplannable' in plan) throw new UserError(`its app cannot run on a board: ${plan.unplannable}`);
    const aot = engine === 'aot' ? ' --engine aot' : '';
    const fw = board.firmwares.length > 1 ? ` --firmware ${board.firmware.name}` : '';
    if (!plan.fits) throw new UserError(`does not fit ${board.name}${fw ? `'s ${board.firmware.name} firmware` : ''}${aot ? ' (AOT build)' : ''}: ${shortfall(plan)}`, `see \`edge-flash plan ${path} --board ${board.name}${fw}${aot}\`${fw ? `; pack for it with \`pack --board ${board.name}${fw}${aot}\`` : ''}`);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`${path}: ${e.message}`, e.hint);
    throw e;
  }
}
