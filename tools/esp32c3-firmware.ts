// The bare-metal ESP32-C3 firmware files the package carries: each ELF `make -C boards/runtime esp32c3
// esp32c3-aot` linked, as the one flashable file `flash --rom` writes at 0x0 (host/firmware/baremetal.ts),
// into build/esp32c3/. Run by tools/build.mjs after the make; `edge-flash firmware --bare-metal` copies them.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { boardByName } from '../host/board/boards.ts';
import { baremetalBinPath, baremetalFirmware, type BaremetalEngine } from '../host/firmware/baremetal.ts';
import { fromRoot } from '../host/paths.ts';

const board = boardByName('esp32c3');
for (const engine of ['wasm3', 'aot'] as BaremetalEngine[]) {
  const elf = fromRoot('boards', 'runtime', 'build', 'esp32c3', `edge-flash-esp32c3${engine === 'aot' ? '-aot' : ''}.elf`);
  if (!existsSync(elf)) continue;
  const fw = baremetalFirmware(new Uint8Array(readFileSync(elf)), board, elf);
  const out = baremetalBinPath(engine);
  mkdirSync(fromRoot('build', 'esp32c3'), { recursive: true });
  writeFileSync(out, fw.bytes);
  process.stderr.write(`${out}: ${fw.bytes.byteLength} bytes (RAM part ${fw.ramImage}, flash part ${fw.xipBytes})\n`);
}
