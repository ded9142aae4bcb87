// `edge-flash flash --rom`: firmware and/or an image written through an ESP32-family chip's ROM serial
// bootloader with esptool-js, over NodeWebSerialPort (./webserial-node.ts). Everything that can be
// refused is refused before the port is opened: the board, the regions (inside flash, apart, each in
// its partition), the image (readImage with the board) and its fit (the planner). Then: auto-reset into
// the bootloader, SYNC, the chip detected and matched against the board, the stub loader uploaded
// (unless --no-stub) or the ROM loader used as it is; each region written and its MD5 compared. The
// flash write goes through the esptool-js adapter below (what it takes from esptool-js, and why not
// its writeFlash); docs/rom-flash.md is the user's side of it.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError, errnoText } from '../errors.ts';
import { imageToModel } from '../image/model.ts';
import { fmtBytes } from '../image/plan.ts';
import { readImage } from '../image/read.ts';
import { planImageOn, shortfall } from '../cli/fit.ts';
import { withFirmware, type BoardProfile } from './boards.ts';
import { readPartitionTable } from './esp-partitions.ts';
import { baremetalBinPath, baremetalLayout, checkBaremetalFirmware, readBaremetalFirmware, type BaremetalEngine } from '../firmware/baremetal.ts';
import { SECTOR } from '../firmware/project.ts';
import { deviceApp } from '../image/pack.ts';
import { NodeWebSerialPort } from './webserial-node.ts';

// The chip behind each ESP32-family board, as esptool-js names it, and where its ROM looks for the
// second-stage bootloader (ESP-IDF's defaults: the partition table at 0x8000 on all of them).
const CHIPS: Record<string, { chip: string; bootloader: number }> = {
  esp32: { chip: 'ESP32', bootloader: 0x1000 },
  esp32s3: { chip: 'ESP32-S3', bootloader: 0x0 },
  esp32c3: { chip: 'ESP32-C3', bootloader: 0x0 },
};
const PARTITION_TABLE = 0x8000;
const ROM_BAUD = 115200;          // every ESP32-family ROM starts at 115200 (then CHANGE_BAUDRATE)
const ROM_BLOCK = 0x400;          // FLASH_DATA size for the ROM loader (esptool's), 16 KiB for the stub
const SPI_ATTACH = 0x0d, SPI_SET_PARAMS = 0x0b;

export function chipOfBoard(board: BoardProfile): { chip: string; bootloader: number } {
  const family = Object.keys(CHIPS).sort((a, b) => b.length - a.length).find((k) => board.name === k || board.name.startsWith(`${k}-`));
  if (!family) throw new UserError(`--rom writes through an ESP32-family ROM bootloader; ${board.name} is ${board.title}`, 'for a board running the edge-flash runtime, leave out --rom');
  return CHIPS[family];
}

export interface Region {
  name: string;                   // what a message calls it: 'bootloader', 'app', 'image', ...
  file: string;
  offset: number;
  data: Uint8Array;
  isImage?: boolean;
  note?: string;                  // said beside the region before writing (an image whose fit cannot be planned)
}

const hex = (n: number) => `0x${n.toString(16)}`;

function readBytes(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UserError(`${what} ${path}: ${errnoText(e)}`);
  }
}

// An ESP-IDF build folder: its flash_args (idf.py's own list: an options line, then "OFFSET FILE"
// lines, paths relative to the folder), or else the usual three files at ESP-IDF's default offsets
// and the profile's app partition.
export function firmwareRegions(dir: string, board: BoardProfile): { regions: Region[]; flashSize?: string } {
  const d = resolve(dir);
  if (!existsSync(d) || !statSync(d).isDirectory()) throw new UserError(`--firmware ${dir}: not a folder (expected an ESP-IDF build folder, DIR/build)`);
  const args = join(d, 'flash_args');
  if (existsSync(args)) {
    const regions: Region[] = [];
    let flashSize: string | undefined;
    for (const [i, raw] of readFileSync(args, 'utf8').split('\n').entries()) {
      const line = raw.trim();
      if (!line) continue;
      if (line.startsWith('--')) {
        flashSize = /--flash_size\s+(\S+)/.exec(line)?.[1] ?? flashSize;
        continue;
      }
      const m = /^(0x[0-9a-f]+)\s+(\S.*)$/i.exec(line);
      if (!m) throw new UserError(`${args} line ${i + 1}: expected 'OFFSET FILE' or options, got '${line}'`);
      const file = join(d, m[2]);
      regions.push({ name: regionName(m[2]), file, offset: parseInt(m[1], 16), data: readBytes(file, `${args} line ${i + 1}:`) });
    }
    if (!regions.length) throw new UserError(`${args}: no 'OFFSET FILE' lines`);
    return { regions, flashSize };
  }
  const { bootloader } = chipOfBoard(board);
  const app = board.flash.partitions.find((p) => p.type === 'app');
  const bins = readdirSync(d).filter((f) => f.endsWith('.bin'));
  if (bins.length !== 1 || !app) {
    throw new UserError(`--firmware ${dir}: no flash_args, and ${bins.length ? `${bins.length} .bin files (${bins.join(', ')})` : 'no .bin file'} where one app is expected`, 'point --firmware at the build folder of `idf.py build` (it writes flash_args)');
  }
  const at = (name: string, rel: string, offset: number) => ({ name, file: join(d, rel), offset, data: readBytes(join(d, rel), `--firmware: ${name}`) });
  return {
    regions: [
      at('bootloader', join('bootloader', 'bootloader.bin'), bootloader),
      at('partition table', join('partition_table', 'partition-table.bin'), PARTITION_TABLE),
      at('app', bins[0], app.offset),
    ],
  };
}

function regionName(rel: string): string {
  if (/bootloader/i.test(rel)) return 'bootloader';
  if (/partition/i.test(rel)) return 'partition table';
  if (/ota_data/i.test(rel)) return 'otadata';
  return rel.replace(/^.*\//, '').replace(/\.bin$/, '');
}

// "4MB", "8MB", "2MB" (esptool's spelling in flash_args) as bytes.
function flashSizeBytes(s: string): number | undefined {
  const m = /^(\d+)(KB|MB)$/i.exec(s);
  return m ? Number(m[1]) * (m[2].toUpperCase() === 'KB' ? 1024 : 1 << 20) : undefined;
}

// Every check that needs no chip: what is written where, and that it belongs there.
export function planRegions(board: BoardProfile, o: { firmware?: string; image?: string }): Region[] {
  chipOfBoard(board);
  if (!o.firmware && !o.image) throw new UserError('flash --rom: nothing to write: give --firmware DIR/build, --image IMAGE, or both');
  const bare = o.firmware ? baremetalSource(o.firmware, board) : null;
  if (bare) return checkRegions(board, baremetalRegions(board, bare, o.image));
  const regions: Region[] = [];
  if (o.firmware) {
    const fw = firmwareRegions(o.firmware, board);
    const size = fw.flashSize && fw.flashSize !== 'keep' && fw.flashSize !== 'detect' ? flashSizeBytes(fw.flashSize) : undefined;
    if (size !== undefined && size !== board.flash.size) {
      throw new UserError(`--firmware ${o.firmware}: built for ${fw.flashSize} of flash, but ${board.name} has ${fmtBytes(board.flash.size)}`, `set the flash size in sdkconfig (CONFIG_ESPTOOLPY_FLASHSIZE) to the board's`);
    }
    const app = board.flash.partitions.find((p) => p.type === 'app');
    for (const r of fw.regions) {
      if (app && r.offset === app.offset && r.data.byteLength > app.size) {
        throw new UserError(`--firmware: ${r.name} is ${fmtBytes(r.data.byteLength)}, ${board.name}'s ${app.name} partition holds ${fmtBytes(app.size)}`);
      }
    }
    regions.push(...fw.regions);
  }
  if (o.image) {
    const slot = board.flash.partitions.find((p) => p.name === board.flash.imagePartition);
    if (!slot) throw new UserError(`${board.name} has no model partition in its profile`);
    const bytes = readBytes(o.image, 'image');
    let img;
    try {
      img = readImage(bytes, { board }); // the board id, the size against the slot, every CRC and the SHA-256
    } catch (e) {
      if (e instanceof UserError) throw new UserError(`${o.image}: ${e.message}`, e.hint);
      throw e;
    }
    // beside an ESP-IDF build: the ESP-IDF firmware's figures; an image alone: the board's default firmware
    const on = o.firmware && board.firmwares.includes('esp-idf') ? withFirmware(board, 'esp-idf') : board;
    const plan = planImageOn(img, imageToModel(img, o.image), on);
    if (!('unplannable' in plan) && !plan.fits) {
      const fwFlag = board.firmwares.length > 1 ? ` --firmware ${on.firmware.name}` : '';
      throw new UserError(`${o.image}: does not fit ${board.name}${fwFlag ? `'s ${on.firmware.name} firmware` : ''}: ${shortfall(plan)}; nothing was written`, `see \`edge-flash plan ${o.image} --board ${board.name}${fwFlag}\``);
    }
    const note = 'unplannable' in plan ? `fit not checked: ${plan.unplannable}` : undefined;
    regions.push({ name: `image (${slot.name} slot)`, file: o.image, offset: slot.offset, data: bytes, isImage: true, note });
  }
  checkAgainstPartitionTable(regions);
  return checkRegions(board, regions);
}

// Every region on a sector, inside the flash, apart from the others.
function checkRegions(board: BoardProfile, regions: Region[]): Region[] {
  const sorted = [...regions].sort((a, b) => a.offset - b.offset);
  for (const [i, r] of sorted.entries()) {
    const end = r.offset + r.data.byteLength;
    if (r.offset % 0x1000) throw new UserError(`${r.name} at ${hex(r.offset)}: not on a 4 KiB flash sector`);
    if (end > board.flash.size) throw new UserError(`${r.name} (${r.file}): ${hex(r.offset)}..${hex(end)} ends past ${board.name}'s ${fmtBytes(board.flash.size)} of flash`);
    const next = sorted[i + 1];
    if (next && end > next.offset) throw new UserError(`${r.name} (${hex(r.offset)}..${hex(end)}) overlaps ${next.name} at ${hex(next.offset)}`);
  }
  return regions;
}

// --firmware for the bare-metal ESP32-C3 runtime: `bare-metal` or `bare-metal-aot` (the package's prebuilt
// files), or a file `firmware --bare-metal` wrote (a file, where ESP-IDF's is a build folder). Its engine
// decides the image's plan: the AOT file is recognised by its bytes.
function baremetalSource(firmware: string, board: BoardProfile): { file: string; data: Uint8Array; engine: BaremetalEngine } | null {
  if (firmware === 'bare-metal' || firmware === 'bare-metal-aot') {
    const engine: BaremetalEngine = firmware === 'bare-metal' ? 'wasm3' : 'aot';
    const fw = readBaremetalFirmware(engine, board);
    return { file: fw.path, data: fw.bytes, engine };
  }
  if (!existsSync(firmware) || statSync(firmware).isDirectory()) return null;
  const data = readBytes(firmware, '--firmware');
  baremetalLayout(board);   // esp32c3 only
  checkBaremetalFirmware(data, board, `--firmware ${firmware}`);
  const aot = baremetalBinPath('aot');
  const engine: BaremetalEngine = existsSync(aot) && Buffer.from(readFileSync(aot)).equals(Buffer.from(data)) ? 'aot' : 'wasm3';
  return { file: firmware, data, engine };
}

// The bare-metal firmware at 0x0; with an image, the image in slot A and the slot record erased (the
// firmware then records the image as an upload's commit would, boots it on trial and confirms it after
// its self-test: core/slots.h, ef_slots_adopt).
function baremetalRegions(board: BoardProfile, fw: { file: string; data: Uint8Array; engine: BaremetalEngine }, image?: string): Region[] {
  const layout = baremetalLayout(board);
  const regions: Region[] = [{ name: `firmware (bare metal, ${fw.engine})`, file: fw.file, offset: layout.firmware, data: fw.data }];
  if (!image) return regions;
  const bytes = readBytes(image, 'image');
  if (bytes.byteLength > layout.slotBytes) throw new UserError(`${image}: ${bytes.byteLength} bytes, a model slot of the bare-metal firmware holds ${layout.slotBytes}`);
  let img;
  try {
    img = readImage(bytes, { board });
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`${image}: ${e.message}`, e.hint);
    throw e;
  }
  if (fw.engine === 'aot') {
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    if (sha(img.app) !== sha(deviceApp())) {
      throw new UserError(`${image}: its app is not build/device.wasm, the app compiled into the AOT firmware: the board would refuse it at boot`, 'pack the image with this edge-flash, or use --firmware bare-metal (wasm3 runs any device app)');
    }
  }
  const plan = planImageOn(img, imageToModel(img, image), withFirmware(board, 'bare-metal'), fw.engine);
  if (!('unplannable' in plan) && !plan.fits) {
    const aot = fw.engine === 'aot' ? ' --engine aot' : '';
    throw new UserError(`${image}: does not fit ${board.name}${aot ? ' (AOT firmware)' : ''}: ${shortfall(plan)}; nothing was written`, `see \`edge-flash plan ${image} --board ${board.name} --firmware bare-metal${aot}\``);
  }
  const note = 'unplannable' in plan ? `fit not checked: ${plan.unplannable}` : undefined;
  regions.push({ name: 'image (slot A)', file: image, offset: layout.slotA, data: bytes, isImage: true, note });
  regions.push({ name: 'slot record (erased)', file: '(0xFF)', offset: layout.region, data: new Uint8Array(2 * SECTOR).fill(0xff) });
  return regions;
}

// When the firmware brings its partition table, everything else it writes must lie in one of its
// partitions (an app in an app partition), and the image in a data partition that starts at the
// profile's model slot: else the firmware would look for the model elsewhere.
function checkAgainstPartitionTable(regions: Region[]): void {
  const table = regions.find((r) => r.name === 'partition table');
  if (!table) return;
  const parts = readPartitionTable(table.data, `${table.file}`);
  const list = parts.map((p) => `${p.label} ${hex(p.offset)}+${hex(p.size)}`).join(', ');
  for (const r of regions) {
    if (r === table || r.name === 'bootloader') continue;
    const end = r.offset + r.data.byteLength;
    if (r.isImage) {
      const p = parts.find((q) => q.offset === r.offset && q.type === 1);
      if (!p) throw new UserError(`${table.file}: no data partition at ${hex(r.offset)}, where the board profile puts the model slot (the table has ${list})`, 'generate the firmware with `edge-flash firmware --board` for this board');
      if (r.data.byteLength > p.size) throw new UserError(`${r.file}: ${r.data.byteLength} bytes, the firmware's ${p.label} partition holds ${p.size}`);
      continue;
    }
    const p = parts.find((q) => r.offset >= q.offset && end <= q.offset + q.size);
    if (!p) throw new UserError(`${r.name} (${r.file}) at ${hex(r.offset)}..${hex(end)} lies in no partition of ${table.file} (${list})`);
    if (r.offset === p.offset && p.type === 0 && r.data[0] !== 0xe9) throw new UserError(`${r.name} (${r.file}): not an ESP app image (first byte 0x${r.data[0].toString(16)}, expected 0xe9)`);
  }
}

export interface RomFlashOptions {
  port: string;
  board: BoardProfile;
  regions: Region[];
  baud: number;                                   // switched to after SYNC (CHANGE_BAUDRATE)
  reset: boolean;                                 // hard reset through RTS at the end
  stub: boolean;                                  // upload esptool's flasher stub (false: --no-stub, the ROM loader)
  log: (msg: string) => void;
  trace?: boolean;                                // esptool-js's own messages on stderr too
  onProgress?: (region: Region, written: number, total: number) => void;
}

export interface RomFlashResult {
  chip: string;
  loader: 'stub' | 'rom';
  regions: Array<{ name: string; offset: number; bytes: number; md5: string; ms: number; resent: number; passes: number }>;
  reset: 'done' | 'not asked' | 'no lines';       // 'no lines': asked, but the port has no DTR/RTS
}

// ---------------------------------------------------------------------------------------------------
// The esptool-js adapter. esptool-js 0.7.0 (node_modules/esptool-js, used as it is, not patched) does
// the layers below the flash write: SLIP framing and packet reads with a timeout (Transport, over
// ./webserial-node.ts), SYNC with its DTR/RTS reset sequences, chip detection, and the stub upload
// (runStub). The flash write itself is done here through its command layer (checkCommand), following
// esptool (the reference for what the ROMs accept), because esptool-js's writeFlash differs from it
// where a real chip notices:
//  1. FLASH_BEGIN: esptool-js sends a fifth word (the encrypted-write flag) to every ROM loader; the
//     ESP32's ROM (as the ESP8266's) answers status 1, error 5 ("invalid message") and takes 4 words.
//     esptool sends the fifth word only to a stub or to ROMs of later chips: so do we (ROM_FLASH_BEGIN_WORDS).
//  2. CHANGE_BAUDRATE: esptool-js's changeBaud uploads the stub again when the chip goes quiet after
//     the switch, with or without --no-stub: here the switch is checked and a quiet chip is one line.
//  3. A stub that does not start: esptool-js then leaves a chip that has jumped out of its ROM. Here
//     the chip is asked whether its ROM still answers (a ROM reply carries 4 status bytes, a stub's 2):
//     if so (a chip that refused the RAM upload) the ROM loader goes on; if not, the chip is reset into
//     the ROM again through DTR/RTS, or, on a port without them, one line says so and names --no-stub.
//  4. Every write and read is bounded: a packet read by Transport's timeout, a write by the port's
//     drain timeout (webserial-node.ts); a FLASH_DATA whose reply does not come is sent again with the
//     same sequence number, at most WRITE_BLOCK_ATTEMPTS times, as esptool does. The ROM takes a
//     resent block at its place; a stub writes it after the last block it wrote (esptool's stubs do
//     not look at the sequence number), so a region whose blocks were resent is only as good as its
//     MD5: the MD5 of every region is always read back, and a region with resent blocks whose MD5
//     differs is written again from FLASH_BEGIN (which sets the stub's write address again). Beyond
//     esptool: a block that fails even when resent, on a loader that still answers, starts its region
//     over from FLASH_BEGIN (at most REGION_ATTEMPTS passes): the ESP32's ROM (in QEMU) refuses a block
//     resent after a bad checksum (status 1,7, then 1,5), so a resend alone cannot get past a block
//     damaged on the line.
// docs/rom-flash.md says the same for users.
const OP = { FLASH_BEGIN: 0x02, FLASH_DATA: 0x03, FLASH_END: 0x04, READ_REG: 0x0a, CHANGE_BAUDRATE: 0x0f, SPI_FLASH_MD5: 0x13 } as const;
const ROM_FLASH_BEGIN_WORDS: Record<string, 4 | 5> = { ESP32: 4, ESP8266: 4 }; // every other ROM: 5, as esptool
const STUB_BLOCK = 0x4000;        // FLASH_DATA size for the stub (esptool's)
const WRITE_BLOCK_ATTEMPTS = 3;   // esptool's: a block is sent at most 3 times
const REGION_ATTEMPTS = 3;        // ours: a region started over from FLASH_BEGIN at most twice
const DEFAULT_TIMEOUT_MS = 3000;  // esptool's DEFAULT_TIMEOUT: any command's reply
const ERASE_REGION_MS_PER_MB = 30_000; // the ROM erases the whole region at FLASH_BEGIN
const ERASE_WRITE_MS_PER_MB = 40_000;  // a block's erase and write
const MD5_MS_PER_MB = 8000;
const timeoutPerMb = (msPerMb: number, bytes: number) => Math.max(DEFAULT_TIMEOUT_MS, (msPerMb * bytes) / 1e6);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Loader = InstanceType<typeof import('esptool-js').ESPLoader>;
type EspTransport = InstanceType<typeof import('esptool-js').Transport>;
const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();

// Who answers on the port now: 'rom' (a READ_REG reply with the ROM's 4 status bytes), 'stub' (2), or
// nobody within about a second.
async function whoAnswers(loader: Loader, transport: EspTransport): Promise<'rom' | 'stub' | 'nobody'> {
  for (let i = 0; i < 2; i++) {
    try {
      const [, data] = await loader.command(OP.READ_REG, words([0x40001000]), 0, true, 500);
      return data.length >= 4 ? 'rom' : 'stub';
    } catch {
      transport.flushInput();
    }
  }
  return 'nobody';
}

// CHANGE_BAUDRATE (esptool's: the new rate, and the current one for a stub or 0 for the ROM), the host
// side follows, and the chip must still answer.
async function changeBaud(loader: Loader, transport: EspTransport, o: RomFlashOptions, stub: boolean): Promise<void> {
  await loader.checkCommand('change the baud rate', OP.CHANGE_BAUDRATE, words([o.baud, stub ? ROM_BAUD : 0]));
  await sleep(50);
  await transport.changeBaudrate(o.baud);
  await transport.drainInput();
  if ((await whoAnswers(loader, transport)) === 'nobody') {
    throw new UserError(`${o.port}: the chip stopped answering after the switch to ${o.baud} baud; nothing was written`, `try a lower --baud (${ROM_BAUD} always works)`);
  }
}

// One region: FLASH_BEGIN, the blocks, FLASH_END (stub only, as esptool), then SPI_FLASH_MD5 against
// the data's own. Returns the MD5 and how many blocks had to be sent again.
async function writeRegion(loader: Loader, r: Region, o: RomFlashOptions, stub: boolean, chip: string): Promise<{ md5: string; flashMd5: string; resent: number }> {
  const data = padTo4(r.data);
  const blockSize = stub ? STUB_BLOCK : ROM_BLOCK;
  const blocks = Math.ceil(data.length / blockSize);
  const what = `${r.name} at ${hex(r.offset)}`;
  const begin = [data.length, blocks, blockSize, r.offset];
  if (stub || (ROM_FLASH_BEGIN_WORDS[chip] ?? 5) === 5) begin.push(0); // not an encrypted write
  // A refusal names the chip's status; no answer (a read that timed out, a write that did not drain)
  // says which loader went quiet: a stub that stopped is what --no-stub avoids.
  const failed = (step: string, e: unknown): UserError => {
    const detail = oneLine(e).replace(`${o.port}: `, '');
    if (!isSilence(e)) return new UserError(`${o.port}: ${what} (${r.file}): ${step}: ${detail}`, hintAfterStart(false));
    const who = stub ? 'the flasher stub' : 'the ROM loader';
    return new UserError(`${o.port}: ${what} (${r.file}): ${step}: ${who} stopped answering (${detail})`, hintAfterStart(stub));
  };
  // FLASH_BEGIN only erases and sets the write address: an unanswered one is sent once more (a late
  // reply to the first is skipped as a packet of another wait)
  for (let attempt = 1; ; attempt++) {
    try {
      await loader.checkCommand('enter flash download mode', OP.FLASH_BEGIN, words(begin), 0, 0, stub ? DEFAULT_TIMEOUT_MS : timeoutPerMb(ERASE_REGION_MS_PER_MB, data.length));
      break;
    } catch (e) {
      if (attempt < 2 && isSilence(e) && !(e instanceof UserError)) {
        if (o.trace) o.log(`${what}: FLASH_BEGIN: ${oneLine(e)}; sending it again`);
        continue;
      }
      throw failed(`FLASH_BEGIN${attempt > 1 ? ` (sent ${attempt} times)` : ''}`, e);
    }
  }
  let resent = 0;
  const blockTimeout = timeoutPerMb(ERASE_WRITE_MS_PER_MB, blockSize);
  for (let seq = 0; seq < blocks; seq++) {
    const block = new Uint8Array(blockSize).fill(0xff); // the last block padded with 0xFF, as esptool
    block.set(data.subarray(seq * blockSize, (seq + 1) * blockSize));
    const pkt = new Uint8Array(16 + blockSize);
    pkt.set(words([blockSize, seq, 0, 0]));
    pkt.set(block, 16);
    for (let attempt = 1; ; attempt++) {
      try {
        await loader.checkCommand(`write to target flash after seq ${seq}`, OP.FLASH_DATA, pkt, loader.checksum(block), 0, blockTimeout);
        break;
      } catch (e) {
        // a write that does not drain: the chip stopped reading, a resend would only queue behind it
        if (e instanceof UserError || attempt === WRITE_BLOCK_ATTEMPTS) {
          const err = failed(`block ${seq + 1} of ${blocks}${attempt > 1 ? ` (sent ${attempt} times)` : ''}`, e);
          // the region can start over from FLASH_BEGIN where the loader still answers: a ROM that
          // refused or missed the block, or a stub that refused it (not one gone quiet, not a stalled write)
          if (!(e instanceof UserError) && !(stub && isSilence(e))) throw new RegionRestart(err, resent);
          throw err;
        }
        resent++;
        if (o.trace) o.log(`${what}: block ${seq + 1} of ${blocks}: ${oneLine(e)}; sending it again`);
        await sleep(150);
      }
    }
    o.onProgress?.(r, Math.min((seq + 1) * blockSize, r.data.byteLength), r.data.byteLength);
  }
  try {
    if (stub) await loader.checkCommand('leave flash download mode', OP.FLASH_END, words([1]), 0, 0, blockTimeout);
    const md5 = createHash('md5').update(data).digest('hex');
    const got = await loader.checkCommand('calculate md5sum', OP.SPI_FLASH_MD5, words([r.offset, data.length, 0, 0]), 0, stub ? 16 : 32, timeoutPerMb(MD5_MS_PER_MB, data.length));
    // the ROM answers 32 ASCII hex digits, the stub 16 raw bytes
    const flashMd5 = stub ? Buffer.from(got as Uint8Array).toString('hex') : Buffer.from(got as Uint8Array).toString('ascii').toLowerCase();
    return { md5, flashMd5, resent };
  } catch (e) {
    throw failed(stub ? 'FLASH_END or SPI_FLASH_MD5' : 'SPI_FLASH_MD5', e);
  }
}

// A block that failed even when sent again, on a loader that still answers: the region may be written
// again from FLASH_BEGIN, which erases it again and starts the sequence numbers (and a stub's write
// address) over. The ESP32's ROM in QEMU refuses a block sent again after its checksum failed (status
// 1,7, then 1,5 for the resend): a resend alone cannot get past that.
class RegionRestart extends Error {
  constructor(readonly error: UserError, readonly resent: number) {
    super(error.message);
  }
}

// No answer from the chip, as opposed to an answer that refuses: esptool-js's read timeouts, or a
// write that did not drain (webserial-node.ts).
function isSilence(e: unknown): boolean {
  return e instanceof UserError ? /did not drain/.test(e.message) : /Serial data stream stopped|[Tt]imeout|timed out/.test(oneLine(e));
}

function padTo4(d: Uint8Array): Uint8Array {
  if (d.length % 4 === 0) return d;
  const out = new Uint8Array(d.length + 4 - (d.length % 4)).fill(0xff);
  out.set(d);
  return out;
}

function hintAfterStart(stub: boolean): string {
  return stub
    ? 'put the chip in its bootloader again (hold BOOT, tap EN/RST, release BOOT) and run with --no-stub: the ROM loader, slower, needs no stub'
    : 'put the chip in its bootloader again (hold BOOT, tap EN/RST, release BOOT) and flash again; if it repeats, try a lower --baud or another cable';
}

export async function romFlash(o: RomFlashOptions): Promise<RomFlashResult> {
  const { ESPLoader, Transport } = await import('esptool-js');
  const want = chipOfBoard(o.board).chip;
  const noted = new Set<string>();
  const port = new NodeWebSerialPort(o.port, (m) => { if (!noted.has(m)) { noted.add(m); o.log(m); } });
  const transport = new Transport(port as unknown as ConstructorParameters<typeof Transport>[0], false);
  // esptool-js traces on console.log (stdout, where results go) even untraced: to stderr, on --trace
  transport.trace = (m: string) => { if (o.trace) o.log(`esptool-js: ${m}`); };
  const terminal = {
    clean() {},
    writeLine(s: string) { if (o.trace) o.log(`esptool-js: ${s}`); },
    write(s: string) { if (o.trace && s.trim()) o.log(`esptool-js: ${s.trim()}`); },
  };
  const loader = new ESPLoader({ transport, baudrate: o.baud, romBaudrate: ROM_BAUD, terminal, debugLogging: !!o.trace });
  const step = async <T>(what: string, f: () => Promise<T>, hint?: string): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${o.port}: ${what}: ${oneLine(e)}`, hint ?? hintFor(e as Error));
    }
  };
  try {
    await step('no answer from a ROM bootloader', () => loader.connect('default_reset', 3, true));
    const chip: string = loader.chip.CHIP_NAME;
    if (chip !== want) throw new UserError(`${o.port}: the chip is an ${chip}, but --board ${o.board.name} is an ${want}; nothing was written`, 'pick the --board of the attached chip; `edge-flash boards` lists them');
    o.log(`${o.port}: ${chip} in its ROM bootloader`);
    let stub = false;
    if (o.stub) {
      try {
        await loader.runStub();
        stub = loader.IS_STUB;
        if (stub) o.log(`${o.port}: flasher stub running`);
      } catch (e) {
        const why = oneLine(e);
        await transport.drainInput();
        loader.IS_STUB = false;
        const now = await whoAnswers(loader, transport);
        if (now === 'rom') {
          // the ROM refused the RAM upload (secure download mode does) and is still listening
          o.log(`${o.port}: the chip refused the flasher stub (${why}): writing through the ROM loader`);
        } else if (port.modemLines) {
          o.log(`${o.port}: the flasher stub did not start (${why}): reset into the ROM bootloader again (DTR/RTS), writing through the ROM loader`);
          await step('no answer from the ROM bootloader after the reset', async () => {
            await transport.disconnect();
            await loader.connect('default_reset', 3, false);
          });
        } else {
          throw new UserError(`${o.port}: the flasher stub did not start (${why}); the chip left its ROM bootloader for it, and ${o.port} has no DTR/RTS lines to reset it; nothing was written`,
            'put the chip in its bootloader again (hold BOOT, tap EN/RST, release BOOT) and run again with --no-stub');
        }
      }
    }
    if (o.baud !== ROM_BAUD) await step(`cannot switch to ${o.baud} baud`, () => changeBaud(loader, transport, o, stub));
    await step('SPI_ATTACH refused', () => loader.checkCommand('attach the SPI flash', SPI_ATTACH, words(stub ? [0] : [0, 0])));
    await step('SPI_SET_PARAMS refused', () => loader.checkCommand('set the flash parameters', SPI_SET_PARAMS, words([0, o.board.flash.size, 64 * 1024, 4 * 1024, 256, 0xffff])));
    const out: RomFlashResult['regions'] = [];
    for (const r of o.regions) {
      const t0 = performance.now();
      let resent = 0;
      for (let pass = 1; ; pass++) {
        let w;
        try {
          w = await writeRegion(loader, r, o, stub, chip);
        } catch (e) {
          if (!(e instanceof RegionRestart)) throw e;
          if (pass >= REGION_ATTEMPTS) throw e.error;
          resent += e.resent + 1;
          o.log(`${r.name} at ${hex(r.offset)}: ${e.error.message.replace(/^.*?: .*?\): /, '')}; writing the region again from FLASH_BEGIN`);
          await transport.drainInput();
          continue;
        }
        resent += w.resent;
        if (w.flashMd5 === w.md5) {
          out.push({ name: r.name, offset: r.offset, bytes: r.data.byteLength, md5: w.md5, ms: performance.now() - t0, resent, passes: pass });
          break;
        }
        // a stub writes a resent block after the last one it wrote: the region once more from FLASH_BEGIN
        if (stub && w.resent > 0 && pass < REGION_ATTEMPTS) {
          o.log(`${r.name} at ${hex(r.offset)}: MD5 differs after ${w.resent} resent block${w.resent === 1 ? '' : 's'} (the stub writes a resent block as the next one): writing the region again`);
          continue;
        }
        throw new UserError(`${r.name} at ${hex(r.offset)}: MD5 of the flash (${w.flashMd5}) differs from ${r.file}'s (${w.md5}): the write did not take`, 'flash again; if it repeats, try a lower --baud or another cable');
      }
    }
    let reset: RomFlashResult['reset'] = 'not asked';
    if (o.reset) {
      if (port.modemLines) {
        await step('reset', () => loader.after('hard_reset'));
        reset = 'done';
      } else reset = 'no lines';
    }
    return { chip, loader: stub ? 'stub' : 'rom', regions: out, reset };
  } finally {
    // a write that never drained keeps esptool-js's writer locked, and Transport.disconnect waits for
    // the lock: bounded, then the port closed under it
    await Promise.race([transport.disconnect().catch(() => {}), sleep(1000)]);
    await port.close();
  }
}

function words(ws: number[]): Uint8Array {
  const b = new Uint8Array(4 * ws.length);
  const v = new DataView(b.buffer);
  ws.forEach((w, i) => v.setUint32(4 * i, w >>> 0, true));
  return b;
}

function hintFor(e: Error): string | undefined {
  if (/Failed to connect|No serial data|stream stopped/i.test(e.message)) {
    return 'put the chip in its bootloader: hold BOOT (GPIO0 low), tap EN/RST, release BOOT; then run this again';
  }
  return undefined;
}
