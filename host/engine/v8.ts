// The V8 engine: Node's own WebAssembly.
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
