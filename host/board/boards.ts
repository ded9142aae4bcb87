// The board table: one profile per file in boards/<name>.json, registered here (one line each) and
// feeding every --board option. Ids are written into images: append-only, never reused.
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { fromRoot } from '../paths.ts';

export const BOARD_NAMES = ['host', 'esp32', 'esp32s3', 'esp32s3-psram2', 'esp32s3-psram8', 'esp32c3', 'rpi-zero2w', 'rpi4', 'rpi5'] as const;

export const IMAGE_SIZE_LIMIT = 0xffffffff; // an image's total_size is a u32

// How the runtime for a board lays its image partition out (host/firmware/project.ts writes it into the
// partition table, core/slots.h reads it): the slot record (two sectors), then two equal model slots
// A and B, whole sectors each. An image must fit ONE slot: the other keeps the previous image until
// the new one is confirmed. A board whose image is a file (Raspberry Pi, host) has no partition: its
// slot is the file, as large as the image limit allows.
export const SECTOR = 0x1000;               // the SPI flash erase unit: partitions and slots are whole sectors
export const SLOT_RECORD_BYTES = 2 * SECTOR;

export function slotBytesOf(partitionBytes: number): number {
  return Math.floor((partitionBytes - SLOT_RECORD_BYTES) / 2 / SECTOR) * SECTOR;
}

export interface Partition {
  name: string;
  type: string;
  subtype: string;
  offset: number;
  size: number;
}

export interface BoardProfile {
  name: string;
  id: number;
  title: string;
  accepts: string[];                // other boards whose images this one runs (a PSRAM variant runs the plain board's)
  cpu: { arch: string; isa: string; cores: number; clockMHz: number; fpu: string };
  memory: {
    sram?: number;
    psram?: number;
    ram?: number;
    linearMemoryMax: number;        // the largest block wasm3's linear memory can get
    heapTotal: number;              // the heap wasm3's own allocations (code, runtime, stacks) come from
    linearInHeap: boolean;          // linear memory comes from that heap too (no PSRAM): they share it
    basis: string;
    sources: string[];
  };
  flash: {
    size: number;
    mmap: boolean;
    readBytesPerSecond: number;
    readBasis: string;
    eraseBlock: number;             // the smallest unit its storage erases (the slots' erase block): a power of two >= 128
    eraseBasis: string;
    partitions: Partition[];
    imagePartition: string | null;  // null: the image is a file (Raspberry Pi, host)
  };
  imageCapacity: number;            // bytes an image may have on this board: one model slot of its runtime's layout
  imagePartitionBytes: number | null; // the partition both slots and the slot record share (null: the image is a file)
  serial: { transport: 'uart' | 'usb-cdc' | 'usb-serial-jtag' | 'virtual'; baud: number; notes: string };   // baud: the protocol's line rate, the one figure host and firmware use
  wasm3: { stack: number; nativeStack: number; runtime: number; codePerWasmByte: number; basis: string; sources: string[] };
  // The firmware running the app, whose figures `memory` holds: the profile's first `firmwares` entry unless
  // withFirmware() picked another. mainTaskFromHeap: the firmware allocates the task running the app (its
  // stack and TCB) from the heap before the app starts (ESP-IDF's app_main task), so the planner takes it
  // from the heap and, where linear memory shares it, from linear memory's block.
  firmware: { name: string; mainTaskFromHeap: boolean; basis: string };
  firmwares: string[];              // every firmware the board has, the default first
  speed: { fibN: number; fibSeconds: number; basis: string; source: string };
}

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

// "160 KiB", "4 MiB", "0x2f0000" or a number of bytes.
export function parseSize(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string') {
    if (/^0x[0-9a-f]+$/i.test(v)) return parseInt(v, 16);
    const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)$/.exec(v);
    if (m) return Math.round(Number(m[1]) * UNITS[m[2]]);
  }
  throw new Error(`${what}: '${String(v)}' is not a size (bytes, '0x..', or a number with B, KiB, MiB, GiB)`);
}

export function parseProfile(raw: any, file: string): BoardProfile {
  const req = (cond: boolean, field: string) => {
    if (!cond) throw new Error(`board profile ${file}: field ${field} is missing or malformed`);
  };
  req(typeof raw?.name === 'string', 'name');
  req(Number.isInteger(raw.id) && raw.id > 0 && raw.id < 65536, 'id (1..65535)');
  req(typeof raw.title === 'string', 'title');
  req(Array.isArray(raw.accepts), 'accepts');
  req(typeof raw.cpu?.arch === 'string' && Number.isInteger(raw.cpu.cores) && typeof raw.cpu.clockMHz === 'number', 'cpu');
  req(typeof raw.memory?.basis === 'string' && Array.isArray(raw.memory.sources), 'memory.basis/sources');
  req(typeof raw.memory.linearInHeap === 'boolean', 'memory.linearInHeap');
  req(typeof raw.flash?.readBytesPerSecond === 'number' && raw.flash.readBytesPerSecond > 0, 'flash.readBytesPerSecond');
  req(Array.isArray(raw.flash?.partitions), 'flash.partitions');
  req(['uart', 'usb-cdc', 'usb-serial-jtag', 'virtual'].includes(raw.serial?.transport) && Number.isInteger(raw.serial.baud), 'serial');
  req(typeof raw.wasm3?.codePerWasmByte === 'number' && typeof raw.wasm3.basis === 'string', 'wasm3');
  req(typeof raw.speed?.fibSeconds === 'number' && Number.isInteger(raw.speed.fibN) && typeof raw.speed.basis === 'string', 'speed');
  const size = (v: unknown, f: string) => parseSize(v, `board profile ${file}: ${f}`);
  const opt = (v: unknown, f: string) => (v === undefined ? undefined : size(v, f));
  const partitions: Partition[] = raw.flash.partitions.map((p: any, i: number) => {
    req(typeof p.name === 'string' && typeof p.type === 'string' && typeof p.subtype === 'string', `flash.partitions[${i}]`);
    return { name: p.name, type: p.type, subtype: p.subtype, offset: size(p.offset, `partition ${p.name} offset`), size: size(p.size, `partition ${p.name} size`) };
  });
  const flashSize = size(raw.flash.size, 'flash.size');
  const eraseBlock = size(raw.flash.eraseBlock, 'flash.eraseBlock');
  req(eraseBlock >= 128 && (eraseBlock & (eraseBlock - 1)) === 0 && typeof raw.flash.eraseBasis === 'string', 'flash.eraseBlock (a power of two >= 128) and flash.eraseBasis');
  let end = 0;
  for (const p of partitions) {
    req(p.offset >= end && p.offset % 0x1000 === 0, `flash.partitions: ${p.name} overlaps the one before it or is not 4 KiB aligned`);
    end = p.offset + p.size;
  }
  req(end <= flashSize, 'flash.partitions: the last partition ends past flash.size');
  let capacity = Math.min(flashSize, IMAGE_SIZE_LIMIT);
  let partitionBytes: number | null = null;
  if (raw.flash.imagePartition !== null) {
    const p = partitions.find((x) => x.name === raw.flash.imagePartition);
    req(!!p, `flash.imagePartition ('${raw.flash.imagePartition}' is not in flash.partitions)`);
    req(p!.offset % SECTOR === 0 && slotBytesOf(p!.size) >= SECTOR, `flash.imagePartition ('${p!.name}' is too small or unaligned for the slot record and two model slots)`);
    partitionBytes = p!.size;
    capacity = slotBytesOf(p!.size);
  }
  const profile: BoardProfile = {
    name: raw.name, id: raw.id, title: raw.title, accepts: raw.accepts, cpu: raw.cpu,
    memory: {
      sram: opt(raw.memory.sram, 'memory.sram'), psram: opt(raw.memory.psram, 'memory.psram'), ram: opt(raw.memory.ram, 'memory.ram'),
      linearMemoryMax: size(raw.memory.linearMemoryMax, 'memory.linearMemoryMax'), heapTotal: size(raw.memory.heapTotal, 'memory.heapTotal'),
      linearInHeap: raw.memory.linearInHeap,
      basis: raw.memory.basis, sources: raw.memory.sources,
    },
    flash: {
      size: flashSize, mmap: !!raw.flash.mmap, readBytesPerSecond: raw.flash.readBytesPerSecond, readBasis: raw.flash.readBasis,
      eraseBlock, eraseBasis: raw.flash.eraseBasis,
      partitions, imagePartition: raw.flash.imagePartition,
    },
    imageCapacity: capacity,
    imagePartitionBytes: partitionBytes,
    serial: raw.serial,
    wasm3: {
      stack: size(raw.wasm3.stack, 'wasm3.stack'), nativeStack: size(raw.wasm3.nativeStack, 'wasm3.nativeStack'), runtime: size(raw.wasm3.runtime, 'wasm3.runtime'),
      codePerWasmByte: raw.wasm3.codePerWasmByte, basis: raw.wasm3.basis, sources: raw.wasm3.sources ?? [],
    },
    speed: raw.speed,
    firmware: { name: '', mainTaskFromHeap: false, basis: '' },
    firmwares: [],
  };
  // The firmwares: each may give its own heap figures (a bare-metal runtime leaves more than ESP-IDF).
  const fws: any[] = raw.firmwares ?? [{ name: 'native', mainTaskFromHeap: false, basis: 'the runtime as a process: its stack is the OS\'s' }];
  req(Array.isArray(fws) && fws.length > 0, 'firmwares');
  for (const [i, f] of fws.entries()) {
    req(typeof f?.name === 'string' && /^[a-z][a-z0-9-]*$/.test(f.name) && typeof f.mainTaskFromHeap === 'boolean' && typeof f.basis === 'string', `firmwares[${i}] (name, mainTaskFromHeap, basis)`);
    req(fws.findIndex((x) => x.name === f.name) === i, `firmwares[${i}] ('${f.name}' twice)`);
  }
  profile.firmwares = fws.map((f) => f.name);
  variants.set(profile, new Map(fws.map((f) => [f.name, {
    ...profile,
    memory: {
      ...profile.memory,
      linearMemoryMax: f.linearMemoryMax === undefined ? profile.memory.linearMemoryMax : size(f.linearMemoryMax, `firmwares.${f.name}.linearMemoryMax`),
      heapTotal: f.heapTotal === undefined ? profile.memory.heapTotal : size(f.heapTotal, `firmwares.${f.name}.heapTotal`),
    },
    firmware: { name: f.name, mainTaskFromHeap: f.mainTaskFromHeap, basis: f.basis },
  }])));
  const all = variants.get(profile)!;
  for (const v of all.values()) variants.set(v, all);
  return all.get(fws[0].name)!;
}

// A board's profiles by firmware (the same map for each of them).
const variants = new WeakMap<BoardProfile, Map<string, BoardProfile>>();

// The board's profile with `firmware`'s figures (`memory` and `firmware`), or a one-line error naming those there are.
export function withFirmware(board: BoardProfile, firmware: string): BoardProfile {
  const b = variants.get(board)?.get(firmware);
  if (!b) throw new UserError(`--firmware ${firmware}: ${board.name} has ${board.firmwares.map((f) => `'${f}'`).join(', ')}`, `the firmwares are in boards/${board.name}.json`);
  return b;
}

let table: BoardProfile[] | undefined;

export function boards(): BoardProfile[] {
  if (table) return table;
  const loaded = BOARD_NAMES.map((name) => {
    const file = fromRoot('boards', `${name}.json`);
    const p = parseProfile(JSON.parse(readFileSync(file, 'utf8')), `boards/${name}.json`);
    if (p.name !== name) throw new Error(`board profile boards/${name}.json: its name is '${p.name}'`);
    return p;
  });
  for (const p of loaded) {
    if (loaded.filter((q) => q.id === p.id).length > 1) throw new Error(`board id ${p.id} is used twice (${p.name})`);
    for (const a of p.accepts) if (!BOARD_NAMES.includes(a as any)) throw new Error(`board ${p.name} accepts unknown board '${a}'`);
  }
  return (table = loaded);
}

export function boardByName(name: string): BoardProfile {
  const want = String(name).trim().toLowerCase();
  const b = boards().find((x) => x.name.toLowerCase() === want);
  if (!b) throw new UserError(`unknown board '${name}': expected one of ${BOARD_NAMES.join(', ')}`, 'see `edge-flash boards`');
  return b;
}

export function boardById(id: number): BoardProfile | undefined {
  return boards().find((x) => x.id === id);
}

// Whether a board runs an image made for board id `imageBoard`.
export function boardRuns(board: BoardProfile, imageBoard: number): boolean {
  if (board.id === imageBoard) return true;
  return board.accepts.some((a) => boardByName(a).id === imageBoard);
}

export function boardLabel(id: number): string {
  const b = boardById(id);
  return b ? `${b.name} (id ${id})` : `unknown board id ${id}`;
}
