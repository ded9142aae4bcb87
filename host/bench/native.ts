// The native C baseline (tools/bench/native.c), compiled by the system C compiler in the same run,
// single thread: the naive kernels at `-O3`, and the same arithmetic in loops shaped for the
// auto-vectorizer at `-O3 -march=native` (a best-effort vectorized baseline). Both builds take
// `-ffp-contract=off`: WebAssembly and the references never fuse a multiply and an add, and the grouped
// formats' f32 epilogues must match them bit for bit (with FMA, -march=native would fuse d*iq + m*sx).
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../errors.ts';
import { fromRoot } from '../paths.ts';
import { FORMATS } from '../quant/formats.ts';
import type { ActTensor, QuantTensor } from '../quant/tensor.ts';

export const NATIVE_BUILDS = [
  { name: 'c-O3', flags: ['-O3', '-ffp-contract=off'], kernel: 'naive' },
  { name: 'c-O3-march-native', flags: ['-O3', '-march=native', '-ffp-contract=off'], kernel: 'vec' },
] as const;
// The formats tools/bench/native.c has kernels for: every live row of the format table (the table is
// the one list; test/bench-native.test.ts runs each row's native kernels against its reference).
export const NATIVE_FORMATS = new Set(FORMATS.filter((f) => !f.retired && f.kernels.length > 0).map((f) => f.name));

export class NativeBaseline {
  private constructor(
    private dir: string,
    readonly compiler: string,
    readonly binaries: Record<string, string>,
  ) {}

  // Compiles both builds (at the same time: each takes about a second of -O3).
  static async create(): Promise<NativeBaseline> {
    const cc = process.env.CC ?? 'cc';
    let compiler: string;
    try {
      compiler = execFileSync(cc, ['--version'], { encoding: 'utf8' }).split('\n')[0];
    } catch {
      throw new UserError(`no C compiler '${cc}' for the native baseline`, 'install gcc or set CC, or drop native from --engine');
    }
    const dir = mkdtempSync(join(tmpdir(), 'edge-flash-bench-'));
    const binaries: Record<string, string> = {};
    try {
      await Promise.all(NATIVE_BUILDS.map(async (b) => {
        const out = join(dir, b.name);
        try {
          await promisify(execFile)(cc, [...b.flags, '-o', out, fromRoot('tools', 'bench', 'native.c')]);
        } catch (e) {
          throw new Error(`${cc} ${b.flags.join(' ')} tools/bench/native.c failed: ${(e as { stderr?: string }).stderr ?? e}`);
        }
        binaries[b.name] = out;
      }));
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return new NativeBaseline(dir, compiler, binaries);
  }

  // Runs `iters` calls per repeat; returns the seconds of each repeat and the last result.
  run(build: (typeof NATIVE_BUILDS)[number], t: QuantTensor, x: ActTensor, iters: number, repeat: number): { seconds: number[]; y: Float32Array } {
    const input = join(this.dir, 'in.bin');
    const output = join(this.dir, 'out.bin');
    const head = new Float32Array([t.scale]);
    writeFileSync(input, Buffer.concat([
      Buffer.from(head.buffer), Buffer.from(t.data),
      Buffer.from(x.q.buffer, x.q.byteOffset, x.q.byteLength), Buffer.from(x.scales.buffer, x.scales.byteOffset, x.scales.byteLength),
    ]));
    const out = execFileSync(this.binaries[build.name], [t.format.name, build.kernel, `${t.m}`, `${t.k}`, `${x.n}`, `${iters}`, `${repeat}`, input, output], { encoding: 'utf8' });
    const y = new Float32Array(new Uint8Array(readFileSync(output)).buffer);
    return { seconds: out.trim().split('\n').map(Number), y };
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
