// The host wrapper around the WASM kernels: checks shapes against the format table (so a user sees a
// clear error, never a trap), copies tensors into linear memory and calls gemm_<format>_<act>_<variant>.
import { UserError } from '../errors.ts';
import { kernelExport, type ActFormatName, type KernelVariant, type Target, type WeightFormat } from '../quant/formats.ts';
import type { ActTensor, QuantTensor } from '../quant/tensor.ts';
import { baseImports } from './imports.ts';
import { targetFor, wasmBytes } from './index.ts';
import type { Engine, Instance, InstanceOptions } from './types.ts';

export function findVariant(format: WeightFormat, act: ActFormatName, variant: string, target: Target): KernelVariant {
  const v = format.kernels.find((kv) => kv.name === variant);
  if (!v) {
    throw new UserError(`format ${format.name} has no '${variant}' kernel (it has: ${format.kernels.map((kv) => kv.name).join(', ')})`);
  }
  if (!v.acts.includes(act)) throw new UserError(`kernel ${format.name}/${variant} does not take ${act} activations (it takes ${v.acts.join(', ')})`);
  if (!v.targets.includes(target)) throw new UserError(`kernel ${format.name}/${variant} is not in the ${target} build (it is in: ${v.targets.join(', ')})`);
  return v;
}

export function checkShape(format: WeightFormat, variant: KernelVariant, m: number, k: number, n: number): void {
  if (!(m > 0 && k > 0 && n > 0) || !Number.isInteger(m) || !Number.isInteger(k) || !Number.isInteger(n)) {
    throw new UserError(`bad GEMM shape m=${m} k=${k} n=${n}: all must be positive integers`);
  }
  if (k % format.block !== 0) {
    throw new UserError(`shape ${m}x${k} does not fit format ${format.name}: K=${k} is not a multiple of its block size ${format.block}`);
  }
  const tile = Math.max(variant.rowTile, format.rowTile ?? 1);
  if (m % tile !== 0) {
    throw new UserError(`shape ${m}x${k} does not fit kernel ${format.name}/${variant.name}: M=${m} is not a multiple of its row tile ${tile}`);
  }
}

// Buffers of one GEMM placed in linear memory, so a benchmark can call it repeatedly without copies.
export interface PreparedGemm {
  run(): void;
  result(): Float32Array;
}

export class KernelHost {
  readonly target: Target;
  constructor(readonly instance: Instance, target: Target) {
    this.target = target;
  }

  static create(engine: Engine, target: Target = targetFor(engine.name), opts: InstanceOptions = {}): KernelHost {
    return new KernelHost(engine.instantiate(wasmBytes(target), baseImports(), opts), target);
  }

  close(): void {
    this.instance.close();
  }

  reset(): void {
    this.instance.call('arena_reset');
  }

  alloc(bytes: number): number {
    const p = Number(this.instance.call('arena_alloc', bytes));
    if (p === 0) throw new UserError(`out of linear memory allocating ${bytes} bytes`);
    return p;
  }

  write(bytes: Uint8Array): number {
    const p = this.alloc(bytes.byteLength);
    this.instance.memory().set(bytes, p);
    return p;
  }

  read(ptr: number, bytes: number): Uint8Array {
    return this.instance.memory().slice(ptr, ptr + bytes);
  }

  prepare(t: QuantTensor, x: ActTensor, variant: string): PreparedGemm {
    if (x.k !== t.k) throw new UserError(`activation width ${x.k} does not match the weight matrix ${t.m}x${t.k}`);
    const kv = findVariant(t.format, x.format, variant, this.target);
    checkShape(t.format, kv, t.m, t.k, x.n);
    const name = kernelExport(t.format, x.format, variant);
    if (!this.instance.has(name)) throw new Error(`kernel export ${name} is missing from the ${this.target} build`);
    const w = this.write(t.data);
    const xq = this.write(new Uint8Array(x.q.buffer, x.q.byteOffset, x.q.byteLength));
    const xs = this.write(new Uint8Array(x.scales.buffer, x.scales.byteOffset, x.scales.byteLength));
    const y = this.alloc(x.n * t.m * 4);
    const args = [w, t.scale, xq, xs, y, t.m, t.k, x.n];
    return {
      run: () => {
        this.instance.call(name, ...args);
      },
      result: () => new Float32Array(this.read(y, x.n * t.m * 4).buffer),
    };
  }

  gemm(t: QuantTensor, x: ActTensor, variant: string): Float32Array {
    const p = this.prepare(t, x, variant);
    p.run();
    return p.result();
  }

  // Quantize (n, k) f32 activations inside WASM, as the model does before every low-bit matmul.
  quantizeAct(xf: Float32Array, n: number, k: number, qmax: number): { q: Int8Array; scales: Float32Array } {
    const x = this.write(new Uint8Array(xf.buffer, xf.byteOffset, xf.byteLength));
    const q = this.alloc(n * k);
    const s = this.alloc(n * 4);
    this.instance.call('quantize_act', x, q, s, n, k, qmax);
    return { q: new Int8Array(this.read(q, n * k).buffer), scales: new Float32Array(this.read(s, n * 4).buffer) };
  }

  // Top-K sparsify (n, k) f32 rows, `stride` floats apart, inside WASM (the model's a4.8 intermediate states).
  sparsifyTopK(xf: Float32Array, n: number, k: number, stride: number, keep: number): Float32Array {
    const x = this.write(new Uint8Array(xf.buffer, xf.byteOffset, xf.byteLength));
    const hist = this.alloc(256 * 4);
    this.instance.call('sparsify_topk', x, n, k, stride, keep, hist);
    return new Float32Array(this.read(x, xf.byteLength).buffer);
  }
}
