// The V8 engine: Node's own WebAssembly.
import { setFlagsFromString } from 'node:v8';
import type { Engine, HostFunction, Instance, InstanceOptions } from './types.ts';

class V8Instance implements Instance {
  readonly engine = 'v8' as const;
  private exportsObj: Record<string, any>;
  private mem: WebAssembly.Memory;

  constructor(module: WebAssembly.Module, imports: (self: () => Instance) => HostFunction[], private opts: InstanceOptions) {
    const importObj: Record<string, Record<string, any>> = {};
    for (const h of imports(() => this)) {
      (importObj[h.module] ??= {})[h.name] = h.fn;
    }
    const inst = new WebAssembly.Instance(module, importObj);
    this.exportsObj = inst.exports as Record<string, any>;
    this.mem = this.exportsObj.memory as WebAssembly.Memory;
  }

  call(name: string, ...args: (number | bigint)[]): number | bigint {
    const f = this.exportsObj[name];
    if (typeof f !== 'function') throw new Error(`export '${name}' not found`);
    const limit = this.opts.memoryLimitBytes;
    const r = f(...args);
    if (limit !== undefined && this.mem.buffer.byteLength > limit) {
      throw new Error(`linear memory grew to ${this.mem.buffer.byteLength} bytes, over the limit of ${limit}`);
    }
    return r ?? 0;
  }

  has(name: string): boolean {
    return typeof this.exportsObj[name] === 'function';
  }

  memory(): Uint8Array {
    return new Uint8Array(this.mem.buffer);
  }

  close(): void {}
}

export const v8Engine: Engine = {
  name: 'v8',
  instantiate(wasm: Uint8Array, imports, opts: InstanceOptions = {}): Instance {
    return new V8Instance(new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>), imports, opts);
  },
};

// For benchmarks: compile modules created from now on with V8's optimizing tier only. By default V8
// starts each function in its baseline tier and optimizes it in the background once hot; on the
// 260K model that took 0.2 s to over 1 s of decoding (measured: 30-45 % slower until then), so a
// timed pass could land on either side. Process-wide, so `run` does not call it.
export function compileOptimizedOnly(): void {
  setFlagsFromString('--no-liftoff');
}

