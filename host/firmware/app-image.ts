// The ESP app image, as an ESP32-family ROM boots it from flash (docs/esp-app-image.md): a 24-byte
// header, the segments (each an 8-byte header, [load address, length], then its bytes), zero padding to
// a one-byte checksum at the end of a 16-byte line (0xEF XOR every segment byte), and the SHA-256 of
// all of that appended. Made here from an ELF32 the bare-metal runtime's Makefile links
// (boards/runtime/baremetal/esp32c3/), so a user needs no ESP-IDF and no esptool: one writer (this file),
// one reader (readAppImage, for the tests and `flash --rom`'s checks).
import { createHash } from 'node:crypto';
import { UserError } from '../errors.ts';

export const APP_IMAGE_MAGIC = 0xe9;
export const CHECKSUM_SEED = 0xef;
const HEADER_BYTES = 24;
const SEGMENT_HEADER_BYTES = 8;
// The chip ids of the extended header (esp_chip_id_t): the ROM and ESP-IDF refuse an image for another chip.
export const CHIP_IDS: Record<string, number> = { esp32: 0x0000, esp32s3: 0x0009, esp32c3: 0x0005 };
// header byte 2: SPI mode; byte 3: flash size (high nibble) and frequency (low nibble)
const SPI_MODES = { qio: 0, qout: 1, dio: 2, dout: 3 } as const;
const FLASH_SIZES: Record<number, number> = { [1 << 20]: 0, [2 << 20]: 1, [4 << 20]: 2, [8 << 20]: 3, [16 << 20]: 4 };
const FLASH_FREQ_40M = 0x0;

export interface AppSegment { addr: number; data: Uint8Array }
export interface AppImageOptions {
  chip: keyof typeof CHIP_IDS | string;
  entry: number;
  segments: AppSegment[];
  flashSize: number;                 // bytes: 1, 2, 4, 8 or 16 MiB
  spiMode?: keyof typeof SPI_MODES;  // default dio: what every ESP32-family module reads
}

export function writeAppImage(o: AppImageOptions): Uint8Array {
  const chipId = CHIP_IDS[o.chip];
  if (chipId === undefined) throw new UserError(`app image: unknown chip '${o.chip}' (expected ${Object.keys(CHIP_IDS).join(', ')})`);
  const size = FLASH_SIZES[o.flashSize];
  if (size === undefined) throw new UserError(`app image: flash size ${o.flashSize} is not 1, 2, 4, 8 or 16 MiB`);
  if (!o.segments.length || o.segments.length > 16) throw new UserError(`app image: ${o.segments.length} segments (the ROM takes 1 to 16)`);
  const body = o.segments.reduce((n, s) => n + SEGMENT_HEADER_BYTES + s.data.byteLength, HEADER_BYTES);
  const total = (Math.floor(body / 16) + 1) * 16;   // the checksum byte is the last of a 16-byte line
  const out = new Uint8Array(total + 32);
  const v = new DataView(out.buffer);
  out[0] = APP_IMAGE_MAGIC;
  out[1] = o.segments.length;
  out[2] = SPI_MODES[o.spiMode ?? 'dio'];
  out[3] = (size << 4) | FLASH_FREQ_40M;
  v.setUint32(4, o.entry >>> 0, true);
  out[8] = 0xee;                     // wp_pin: none
  // 9..11 spi_pin_drv: 0 (the ROM's defaults)
  v.setUint16(12, chipId, true);
  out[14] = 0;                       // min_chip_rev (old field): any
  v.setUint16(15, 0, true);          // min_chip_rev_full: any
  v.setUint16(17, 0xffff, true);     // max_chip_rev_full: any
  // 19..22 reserved: 0
  out[23] = 1;                       // hash_appended: the SHA-256 follows the checksum
  let at = HEADER_BYTES, sum = CHECKSUM_SEED;
  for (const s of o.segments) {
    if (s.data.byteLength % 4) throw new UserError(`app image: segment at 0x${s.addr.toString(16)} is ${s.data.byteLength} bytes, not a multiple of 4`);
    v.setUint32(at, s.addr >>> 0, true);
    v.setUint32(at + 4, s.data.byteLength, true);
    out.set(s.data, at + SEGMENT_HEADER_BYTES);
    for (const b of s.data) sum ^= b;
    at += SEGMENT_HEADER_BYTES + s.data.byteLength;
  }
  out[total - 1] = sum;
  out.set(createHash('sha256').update(out.subarray(0, total)).digest(), total);
  return out;
}

export interface AppImageInfo { chipId: number; entry: number; flashSize: number; segments: Array<{ addr: number; offset: number; size: number }>; checksum: number; sha256: string }

// Every check the ROM makes on an image it boots, and the SHA-256: a refusal says what was found.
export function readAppImage(b: Uint8Array, what = 'app image'): AppImageInfo {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.byteLength < HEADER_BYTES + 16 + 32) throw new UserError(`${what}: ${b.byteLength} bytes, too short for an ESP app image`);
  if (b[0] !== APP_IMAGE_MAGIC) throw new UserError(`${what}: first byte 0x${b[0].toString(16)}, expected 0xe9 (not an ESP app image)`);
  const n = b[1];
  const segments: AppImageInfo['segments'] = [];
  let at = HEADER_BYTES, sum = CHECKSUM_SEED;
  for (let i = 0; i < n; i++) {
    if (at + SEGMENT_HEADER_BYTES > b.byteLength) throw new UserError(`${what}: segment ${i} header at ${at} is past the end (${b.byteLength} bytes)`);
    const addr = v.getUint32(at, true), size = v.getUint32(at + 4, true);
    if (at + SEGMENT_HEADER_BYTES + size > b.byteLength) throw new UserError(`${what}: segment ${i} (${size} bytes at ${at + SEGMENT_HEADER_BYTES}) runs past the end`);
    for (let k = at + SEGMENT_HEADER_BYTES; k < at + SEGMENT_HEADER_BYTES + size; k++) sum ^= b[k];
    segments.push({ addr, offset: at + SEGMENT_HEADER_BYTES, size });
    at += SEGMENT_HEADER_BYTES + size;
  }
  const total = (Math.floor(at / 16) + 1) * 16;
  if (total + (b[23] ? 32 : 0) > b.byteLength) throw new UserError(`${what}: the checksum (and hash) end at ${total + 32}, past the end (${b.byteLength} bytes)`);
  if (b[total - 1] !== sum) throw new UserError(`${what}: checksum 0x${b[total - 1].toString(16)}, the segments give 0x${sum.toString(16)}`);
  const sha = createHash('sha256').update(b.subarray(0, total)).digest('hex');
  if (b[23] && Buffer.from(b.subarray(total, total + 32)).toString('hex') !== sha) throw new UserError(`${what}: the appended SHA-256 is not that of the image (${sha})`);
  const sizeCode = b[3] >> 4;
  return { chipId: v.getUint16(12, true), entry: v.getUint32(4, true), flashSize: (1 << 20) << sizeCode, segments, checksum: sum, sha256: sha };
}

// The loadable parts of an ELF32 little-endian executable (RISC-V or Xtensa), as elf2image takes them:
// every allocated section with bytes in the file (SHT_PROGBITS and the like, not SHT_NOBITS: bss is
// zeroed by the start-up code), at its address, sections that follow each other merged into one segment,
// each padded to 4 bytes. Sections, not program headers: a linker's PT_LOAD may start a page early and
// carry the ELF headers into RAM.
export function elfSegments(elf: Uint8Array, what = 'ELF'): { entry: number; segments: AppSegment[] } {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.byteLength < 52 || v.getUint32(0, false) !== 0x7f454c46) throw new UserError(`${what}: not an ELF file`);
  if (elf[4] !== 1 || elf[5] !== 1) throw new UserError(`${what}: not a 32-bit little-endian ELF (class ${elf[4]}, data ${elf[5]})`);
  const entry = v.getUint32(24, true), shoff = v.getUint32(32, true), shentsize = v.getUint16(46, true), shnum = v.getUint16(48, true);
  const SHF_ALLOC = 2, SHT_NOBITS = 8;
  const parts: Array<{ addr: number; bytes: Uint8Array }> = [];
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * shentsize;
    if (h + 40 > elf.byteLength) throw new UserError(`${what}: section header ${i} is past the end`);
    const type = v.getUint32(h + 4, true), flags = v.getUint32(h + 8, true), addr = v.getUint32(h + 12, true);
    const off = v.getUint32(h + 16, true), size = v.getUint32(h + 20, true);
    if (!(flags & SHF_ALLOC) || type === SHT_NOBITS || type === 0 || !size) continue;
    if (off + size > elf.byteLength) throw new UserError(`${what}: section ${i} runs past the end of the file`);
    parts.push({ addr, bytes: elf.subarray(off, off + size) });
  }
  parts.sort((a, b) => a.addr - b.addr);
  const merged: Array<{ addr: number; chunks: Uint8Array[]; end: number }> = [];
  for (const p of parts) {
    const last = merged[merged.length - 1];
    if (last && p.addr < last.end) throw new UserError(`${what}: sections overlap at 0x${p.addr.toString(16)}`);
    if (last && p.addr - last.end < 16) {   // a gap of alignment only: filled with zeros
      last.chunks.push(new Uint8Array(p.addr - last.end), p.bytes);
      last.end = p.addr + p.bytes.byteLength;
    } else merged.push({ addr: p.addr, chunks: [p.bytes], end: p.addr + p.bytes.byteLength });
  }
  const segments = merged.map((m) => {
    const data = new Uint8Array((m.end - m.addr + 3) & ~3);
    let at = 0;
    for (const c of m.chunks) { data.set(c, at); at += c.byteLength; }
    return { addr: m.addr, data };
  });
  if (!segments.length) throw new UserError(`${what}: no loadable section`);
  return { entry, segments };
}
