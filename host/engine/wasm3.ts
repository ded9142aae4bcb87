// The wasm3 engine: the interpreter the boards run, through the tools/wasm3-node addon
// (built by `npm run build` into build/wasm3-node.node). Same behaviour as host/engine/v8.ts.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fromRoot } from '../paths.ts';
import { describeRejected } from './opcodes.ts';
import type { Engine, HostFunction, Instance, InstanceOptions } from './types.ts';

type Addon = typeof import('../../tools/wasm3-node/index.d.ts');

export const WASM3_DEFAULT_STACK = 64 * 1024;
let addon: Addon | undefined;

// EDGE_FLASH_WASM3_ADDON names another build of the addon (one built elsewhere, or none, to try V8's
// fallback); the default is the one `npm run build` makes.
export function loadAddon(): Addon {
  if (addon) return addon;
  const path = process.env.EDGE_FLASH_WASM3_ADDON || fromRoot('build', 'wasm3-node.node');
  if (!existsSync(path)) throw new Error(`the wasm3-node addon was not built (${path} is missing; it needs Rust and libclang: see the README)`);
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
  } catch (e) {
    throw new Error(`the wasm3-node addon at ${path} cannot be loaded (${(e as Error).message.split('\n')[0]})`);
  }
  return addon;
}

export function wasm3Version(): string | undefined {
  try {
    return loadAddon().wasm3Version();
  } catch {
    return undefined;
  }
}

class Wasm3Instance implements Instance {
  readonly engine = 'wasm3' as const;
  private rt: InstanceType<Addon['Runtime']>;

  constructor(a: Addon, wasm: Uint8Array, imports: (self: () => Instance) => HostFunction[], private opts: InstanceOptions) {
    // The memory limit is checked after each call, as V8 does (host/engine/v8.ts), so both engines
    // fail alike; the addon's own limit (memory.grow returning -1) is not used here.
    this.rt = new a.Runtime(opts.stackBytes ?? WASM3_DEFAULT_STACK);
    try {
      this.rt.load(wasm);
      for (const h of imports(() => this)) this.rt.link(h.module, h.name, h.sig, h.fn);
      this.rt.instantiate(); // missing imports and rejected instructions fail here, as on V8
    } catch (e) {
      this.rt.free();
      // wasm3's compile errors do not name the instruction ("incorrect type on stack"): scan for it
      const why = e instanceof Error && e.message.startsWith('wasm3: compile') ? describeRejected(wasm) : undefined;
      if (why) throw new Error(`${(e as Error).message} (${why})`);
      throw e;
    }
  }

  call(name: string, ...args: (number | bigint)[]): number | bigint {
    const r = this.rt.call(name, args);
    const limit = this.opts.memoryLimitBytes;
    if (limit !== undefined && this.rt.memorySize() > limit) {
      throw new Error(`linear memory grew to ${this.rt.memorySize()} bytes, over the limit of ${limit}`);
    }
    return r ?? 0;
  }

  has(name: string): boolean {
    return this.rt.has(name);
  }

  memory(): Uint8Array {
    return this.rt.memory();
  }

  close(): void {
    this.rt.free();
  }
}

export function loadWasm3Engine(): Engine {
  const a = loadAddon();
  return {
    name: 'wasm3',
    instantiate(wasm, imports, opts: InstanceOptions = {}): Instance {
      return new Wasm3Instance(a, wasm, imports, opts);
    },
  };
}
