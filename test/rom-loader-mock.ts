// MockRomLoaderForTests: a test double of an ESP32-family chip held in its ROM serial bootloader, on a
// pty, written from Espressif's "Serial Protocol" document (esptool docs, advanced-topics/serial-
// protocol). The real ROMs run in Espressif's QEMU (test/esp-qemu.ts, test/rom-qemu.test.ts) and are
// what `flash --rom` is checked against; this double is kept only for what the real ROM cannot be made
// to do here: a FLASH_DATA lost on the wire, a reply lost after the write, a flash byte that does not
// hold (a bad MD5), a RAM upload refused (secure download mode), a stub that never answers, the
// ESP32-S3 (no S3 machine in that QEMU), and a chip that never answers. It refuses what the real ESP32
// ROM refuses: a FLASH_BEGIN of 5 words (status 1, error 5, as the ROM in QEMU answers esptool-js 0.7.0).
// SLIP framing both ways; request [0x00, op, size u16, checksum u32, data]; response
// [0x01, op, size u16, value u32, data, status]; the ROM's status is 4 bytes (status, error, 2
// reserved), the stub loader's 2. It checks what a chip checks (sizes, the 0xEF-seeded XOR checksum of
// every _DATA block, sequence numbers, SPI_ATTACH before flash commands, ranges) and answers errors
// with the ROM's codes (0x05 invalid message, 0x06 failed to act, 0x07 invalid CRC, 0x08 flash write
// error). Flash is NOR-like and in memory: FLASH_BEGIN erases whole 4 KiB sectors to 0xFF, a write
// can only clear bits, and the block read back must equal what was sent. The stub-loader upload is
// accepted (MEM_BEGIN/DATA/END, then "OHAI" and the stub's dialect: 2 status bytes, raw MD5), refused
// (MEM_BEGIN fails: the ROM goes on), or accepted by a stub that never answers (the ROM is gone).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fromRoot } from '../host/paths.ts';

export type MockChip = 'esp32' | 'esp32s3' | 'esp32c3';

// Values a chip of each kind reads back: the magic word at 0x40001000 that esptool's targets use to
// tell the chips apart, the chip id in GET_SECURITY_INFO (not on the ESP32: its ROM lacks the command).
const CHIPS: Record<MockChip, { magic: number; chipId: number | null }> = {
  esp32: { magic: 0x00f01d83, chipId: null },
  esp32s3: { magic: 0x00000009, chipId: 9 },
  esp32c3: { magic: 0x1b31506f, chipId: 5 },
};

const OP = {
  FLASH_BEGIN: 0x02, FLASH_DATA: 0x03, FLASH_END: 0x04, MEM_BEGIN: 0x05, MEM_END: 0x06, MEM_DATA: 0x07,
  SYNC: 0x08, WRITE_REG: 0x09, READ_REG: 0x0a, SPI_SET_PARAMS: 0x0b, SPI_ATTACH: 0x0d, CHANGE_BAUDRATE: 0x0f,
  SPI_FLASH_MD5: 0x13, GET_SECURITY_INFO: 0x14,
} as const;
const ERR = { INVALID: 0x05, FAILED: 0x06, BAD_CRC: 0x07, WRITE: 0x08 } as const;
const STUB_ERR = { BAD_DATA_CHECKSUM: 0xc2, UNIMPLEMENTED: 0xff } as const;
const SECTOR = 0x1000;
const SYNC_DATA = new Uint8Array([0x07, 0x07, 0x12, 0x20, ...new Array(32).fill(0x55)]);

export interface MockOptions {
  chip: MockChip;
  flashSize: number;
  stub: 'accept' | 'refuse' | 'silent';   // silent: the upload is taken, the stub never answers
  flash?: Uint8Array;            // the flash as found (default: old contents, a pattern that is not 0xFF)
  dropFlashData?: number;        // the n-th FLASH_DATA (0-based) is lost on the wire: not written, no reply
  loseReplyTo?: number;          // the n-th FLASH_DATA is written but its reply is lost
  corruptAt?: number;            // the flash byte at this address flips a bit once its block is written
  silent?: boolean;              // a chip not in its bootloader (or no chip): hears everything, answers nothing
}

export interface MockEvent { op: number; status: 'ok' | number | 'dropped' | 'reply lost'; note?: string }

export class MockRomLoaderForTests {
  readonly flash: Uint8Array;
  readonly events: MockEvent[] = [];
  path = '';
  baud = 115200;
  stubRunning = false;
  private relay: ChildProcess | undefined;
  private rx: number[] = [];
  private inPacket = false;
  private escaped = false;
  private attached = false;
  private regs = new Map<number, number>();
  private flashOp: { offset: number; eraseEnd: number; eraseLimit: number; blocks: number; blockSize: number; next: number } | null = null;
  private memOp: { offset: number; size: number; blocks: number; blockSize: number; next: number } | null = null;
  private ram: Array<{ start: number; end: number }> = [];
  private flashDataSeen = 0;
  private gone = false;            // jumped into a stub that never answers

  constructor(readonly o: MockOptions) {
    this.flash = o.flash ?? Uint8Array.from({ length: o.flashSize }, (_, i) => (i * 7 + 3) & 0x7f);
  }

  // Flash writes recorded so far (FLASH_BEGIN count): a test asserts nothing was written.
  get flashBegins(): number {
    return this.events.filter((e) => e.op === OP.FLASH_BEGIN && e.status === 'ok').length;
  }

  async start(): Promise<string> {
    const relay = spawn(buildPtyRelay(), [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.relay = relay;
    let head = Buffer.alloc(0);
    this.path = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('pty-relay printed no pty line in 5 s')), 5000);
      const onData = (b: Buffer) => {
        head = Buffer.concat([head, b]);
        const nl = head.indexOf(10);
        if (nl < 0) return;
        clearTimeout(timer);
        relay.stdout!.off('data', onData);
        relay.stdout!.on('data', (d: Buffer) => this.receive(d));
        if (head.length > nl + 1) this.receive(head.subarray(nl + 1));
        resolve(JSON.parse(head.subarray(0, nl).toString()).pty);
      };
      relay.stdout!.on('data', onData);
      relay.on('exit', (code) => reject(new Error(`pty-relay exited (${code})`)));
    });
    return this.path;
  }

  async stop(): Promise<void> {
    const r = this.relay;
    if (!r || r.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      r.on('exit', () => resolve());
      r.stdin!.end();
      setTimeout(() => r.kill(), 1000).unref();
    });
  }

  // SLIP: packets between 0xC0s; 0xDB 0xDC is 0xC0 and 0xDB 0xDD is 0xDB.
  private receive(b: Buffer): void {
    for (const x of b) {
      if (x === 0xc0) {
        if (this.inPacket && this.rx.length) this.command(Uint8Array.from(this.rx));
        this.rx = [];
        this.inPacket = true;
        this.escaped = false;
      } else if (!this.inPacket) {
        continue; // noise between packets
      } else if (this.escaped) {
        this.escaped = false;
        this.rx.push(x === 0xdc ? 0xc0 : x === 0xdd ? 0xdb : -1);
      } else if (x === 0xdb) {
        this.escaped = true;
      } else {
        this.rx.push(x);
      }
    }
  }

  private send(packet: Uint8Array): void {
    const out = [0xc0];
    for (const x of packet) {
      if (x === 0xc0) out.push(0xdb, 0xdc);
      else if (x === 0xdb) out.push(0xdb, 0xdd);
      else out.push(x);
    }
    out.push(0xc0);
    this.relay?.stdin?.write(Buffer.from(out));
  }

  private reply(op: number, value = 0, data: Uint8Array = new Uint8Array(0), error = 0, note?: string): void {
    const status = this.stubRunning ? [error ? 1 : 0, error] : [error ? 1 : 0, error, 0, 0];
    const body = new Uint8Array(data.length + status.length);
    body.set(data);
    body.set(status, data.length);
    const p = new Uint8Array(8 + body.length);
    const v = new DataView(p.buffer);
    p[0] = 0x01;
    p[1] = op;
    v.setUint16(2, body.length, true);
    v.setUint32(4, value >>> 0, true);
    p.set(body, 8);
    this.events.push({ op, status: error ? error : 'ok', note });
    this.send(p);
  }

  private fail(op: number, code: number, note: string): void {
    this.reply(op, 0, new Uint8Array(0), this.stubRunning && code === ERR.BAD_CRC ? STUB_ERR.BAD_DATA_CHECKSUM : code, note);
  }

  private command(p: Uint8Array): void {
    if (p.some((x) => x < 0)) return; // a bad escape: the frame is dropped, as noise
    if (p.length < 8 || p[0] !== 0x00) return; // not a request: ignored
    if (this.o.silent || this.gone) {
      this.events.push({ op: p[1], status: 'dropped', note: 'silent' });
      return;
    }
    const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
    const op = p[1], size = v.getUint16(2, true), chk = v.getUint32(4, true);
    const data = p.subarray(8);
    if (size !== data.length) return this.fail(op, ERR.INVALID, `size field ${size}, ${data.length} bytes of data`);
    const d = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const word = (i: number) => d.getUint32(4 * i, true);
    switch (op) {
      case OP.SYNC: {
        if (data.length !== 36 || data.some((x, i) => x !== SYNC_DATA[i])) return this.fail(op, ERR.INVALID, 'not the sync pattern');
        // the ROM answers a sync 8 times with a non-zero value; the stub once, with 0
        if (this.stubRunning) return this.reply(op, 0);
        for (let i = 0; i < 8; i++) this.reply(op, 0x20120707);
        return;
      }
      case OP.READ_REG: {
        if (data.length !== 4) return this.fail(op, ERR.INVALID, 'READ_REG takes one word');
        const a = word(0);
        return this.reply(op, a === 0x40001000 ? CHIPS[this.o.chip].magic : this.regs.get(a) ?? 0);
      }
      case OP.WRITE_REG: {
        if (data.length === 0 || data.length % 16) return this.fail(op, ERR.INVALID, 'WRITE_REG takes groups of 4 words');
        for (let i = 0; i < data.length / 16; i++) {
          const a = word(4 * i), val = word(4 * i + 1), mask = word(4 * i + 2);
          this.regs.set(a, (((this.regs.get(a) ?? 0) & ~mask) | (val & mask)) >>> 0);
        }
        return this.reply(op);
      }
      case OP.GET_SECURITY_INFO: {
        const id = CHIPS[this.o.chip].chipId;
        if (id === null) return this.fail(op, ERR.INVALID, 'the ESP32 ROM has no GET_SECURITY_INFO');
        const info = new Uint8Array(20);
        new DataView(info.buffer).setUint32(12, id, true);
        return this.reply(op, 0, info);
      }
      case OP.SPI_ATTACH: {
        // the ROM takes a second word (0), the stub only the first
        if (data.length !== (this.stubRunning ? 4 : 8)) return this.fail(op, ERR.INVALID, `SPI_ATTACH with ${data.length} bytes`);
        this.attached = true;
        return this.reply(op);
      }
      case OP.SPI_SET_PARAMS: {
        if (data.length !== 24) return this.fail(op, ERR.INVALID, 'SPI_SET_PARAMS takes 6 words');
        if (word(1) > this.o.flashSize) return this.fail(op, ERR.FAILED, `flash size ${word(1)} over the chip's ${this.o.flashSize}`);
        return this.reply(op);
      }
      case OP.CHANGE_BAUDRATE: {
        if (data.length !== 8) return this.fail(op, ERR.INVALID, 'CHANGE_BAUDRATE takes 2 words');
        const [baud, old] = [word(0), word(1)];
        if (this.stubRunning ? old !== this.baud : old !== 0) return this.fail(op, ERR.INVALID, `second word ${old}`);
        this.reply(op);
        this.baud = baud;
        return;
      }
      case OP.FLASH_BEGIN: {
        // the ESP32's ROM takes 4 words and answers 5 with error 5 (as the real one does in QEMU); the
        // later chips' ROMs take the fifth (encrypted write), and so does a stub
        const words = this.o.chip === 'esp32' && !this.stubRunning ? [16] : [16, 20];
        if (!words.includes(data.length)) return this.fail(op, ERR.INVALID, `FLASH_BEGIN with ${data.length} bytes`);
        if (!this.attached) return this.fail(op, ERR.FAILED, 'flash not attached (SPI_ATTACH first)');
        const [erase, blocks, blockSize, offset] = [word(0), word(1), word(2), word(3)];
        if (offset % SECTOR || offset + erase > this.o.flashSize || blockSize === 0 || blockSize > 0x4000) {
          return this.fail(op, ERR.INVALID, `erase ${erase} at ${offset}, blocks of ${blockSize}`);
        }
        // the ROM erases now, whole sectors; the stub as it writes (eraseEnd: erased up to there)
        const eraseLimit = offset + Math.ceil(erase / SECTOR) * SECTOR;
        const eraseEnd = this.stubRunning ? offset : eraseLimit;
        this.flash.fill(0xff, offset, eraseEnd);
        this.flashOp = { offset, eraseEnd, eraseLimit, blocks, blockSize, next: 0 };
        return this.reply(op);
      }
      case OP.FLASH_DATA:
      case OP.MEM_DATA: {
        const n = op === OP.FLASH_DATA ? this.flashDataSeen++ : -1;
        if (n >= 0 && n === this.o.dropFlashData) {
          this.events.push({ op, status: 'dropped', note: `FLASH_DATA #${n}` });
          return;
        }
        const st = op === OP.FLASH_DATA ? this.flashOp : this.memOp;
        if (!st) return this.fail(op, ERR.FAILED, 'no _BEGIN before _DATA');
        if (data.length < 16) return this.fail(op, ERR.INVALID, 'short _DATA header');
        const [len, seq] = [word(0), word(1)];
        const block = data.subarray(16);
        if (len !== block.length || word(2) !== 0 || word(3) !== 0) return this.fail(op, ERR.INVALID, `length word ${len}, ${block.length} bytes`);
        let x = 0xef;
        for (const b of block) x ^= b;
        if (chk !== x) return this.fail(op, ERR.BAD_CRC, `checksum 0x${chk.toString(16)}, data gives 0x${x.toString(16)}`);
        if (seq !== st.next || seq >= st.blocks) return this.fail(op, ERR.INVALID, `sequence ${seq}, expected ${st.next}`);
        if (op === OP.MEM_DATA) {
          if (len > st.blockSize) return this.fail(op, ERR.INVALID, `block of ${len} over ${st.blockSize}`);
        } else if (len !== st.blockSize) {
          return this.fail(op, ERR.INVALID, `block of ${len}, FLASH_BEGIN said ${st.blockSize}`);
        }
        if (op === OP.MEM_DATA && ++st.next === st.blocks) {
          this.ram.push({ start: st.offset, end: st.offset + (st as NonNullable<typeof this.memOp>).size });
          this.memOp = null;
        }
        if (op === OP.FLASH_DATA) {
          const fo = this.flashOp!;
          const at = fo.offset + seq * fo.blockSize;
          if (at + len > this.o.flashSize) return this.fail(op, ERR.WRITE, `block past the end of flash`);
          if (this.stubRunning) { // just-in-time erase of the sectors this block reaches, within FLASH_BEGIN's size
            const end = Math.min(Math.ceil((at + len) / SECTOR) * SECTOR, fo.eraseLimit);
            if (end > fo.eraseEnd) { this.flash.fill(0xff, fo.eraseEnd, end); fo.eraseEnd = end; }
          }
          for (let i = 0; i < len; i++) this.flash[at + i] &= block[i];
          // read back over the erased part (0xFF padding past it writes nothing)
          const checked = Math.min(len, Math.max(0, fo.eraseLimit - at));
          for (let i = 0; i < checked; i++) if (this.flash[at + i] !== block[i]) return this.fail(op, ERR.WRITE, `read back differs at 0x${(at + i).toString(16)} (not erased)`);
          fo.next++;
          const c = this.o.corruptAt;
          if (c !== undefined && c >= at && c < at + len) this.flash[c] ^= 0x10;
          if (n === this.o.loseReplyTo) {
            this.events.push({ op, status: 'reply lost', note: `FLASH_DATA #${n}` });
            return;
          }
        }
        return this.reply(op);
      }
      case OP.FLASH_END: {
        if (data.length !== 4) return this.fail(op, ERR.INVALID, 'FLASH_END takes one word');
        this.flashOp = null;
        return this.reply(op);
      }
      case OP.MEM_BEGIN: {
        if (data.length !== 16) return this.fail(op, ERR.INVALID, 'MEM_BEGIN takes 4 words');
        if (this.o.stub === 'refuse') return this.fail(op, ERR.FAILED, 'RAM download refused');
        const [size, blocks, blockSize, offset] = [word(0), word(1), word(2), word(3)];
        if (blocks !== Math.ceil(size / blockSize)) return this.fail(op, ERR.INVALID, `${blocks} blocks of ${blockSize} for ${size} bytes`);
        this.memOp = { offset, size, blocks, blockSize, next: 0 };
        return this.reply(op);
      }
      case OP.MEM_END: {
        if (data.length !== 8) return this.fail(op, ERR.INVALID, 'MEM_END takes 2 words');
        const m = this.memOp;
        if (m) return this.fail(op, ERR.FAILED, `${m.next} of ${m.blocks} RAM blocks received`);
        const [noExec, entry] = [word(0), word(1)];
        this.reply(op);
        if (noExec === 0 && this.o.stub === 'silent') {
          this.gone = true; // the ROM jumped into a stub that never starts: nothing answers any more
          return;
        }
        if (noExec === 0 && this.ram.some((r) => entry >= r.start && entry < r.end)) {
          // the uploaded stub starts and says so: the only unsolicited packet
          this.stubRunning = true;
          this.send(new TextEncoder().encode('OHAI'));
        }
        return;
      }
      case OP.SPI_FLASH_MD5: {
        if (data.length !== 16) return this.fail(op, ERR.INVALID, 'SPI_FLASH_MD5 takes 4 words');
        const [addr, size] = [word(0), word(1)];
        if (addr + size > this.o.flashSize) return this.fail(op, ERR.INVALID, 'MD5 range past the end of flash');
        const md5 = createHash('md5').update(this.flash.subarray(addr, addr + size)).digest();
        // the ROM answers 32 hex digits in ASCII, the stub 16 raw bytes
        return this.reply(op, 0, this.stubRunning ? new Uint8Array(md5) : new TextEncoder().encode(md5.toString('hex')));
      }
      default:
        return this.fail(op, this.stubRunning ? STUB_ERR.UNIMPLEMENTED : ERR.INVALID, `unknown command 0x${op.toString(16)}`);
    }
  }
}

// test/pty-relay.c, built once (gcc) into build/test/ beside the sources it reuses.
export function buildPtyRelay(): string {
  const dir = fromRoot('build', 'test');
  const bin = join(dir, 'pty-relay');
  const srcs = [fromRoot('test', 'pty-relay.c'), fromRoot('boards', 'runtime', 'posix', 'serial.c')];
  if (existsSync(bin) && srcs.every((s) => statSync(s).mtimeMs <= statSync(bin).mtimeMs)) return bin;
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('cc', ['-O1', '-Wall', '-Werror', '-o', bin, ...srcs], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot build test/pty-relay.c:\n${r.stdout}${r.stderr}`);
  return bin;
}
