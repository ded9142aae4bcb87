// Types of the wasm3-node addon (tools/wasm3-node/src/lib.rs). `npm run build` puts it at
// build/wasm3-node.node; host/engine/wasm3.ts (loadAddon) loads it.

/** One wasm3 environment, runtime and module. Free it with free(), or let the garbage collector. */
export class Runtime {
  /**
   * stackBytes: the interpreter stack (wasm3's m3_NewRuntime). memoryLimitBytes: linear memory may
   * not grow past it (memory.grow returns -1, as on a board with that much RAM); 0 or absent: none.
   */
  constructor(stackBytes: number, memoryLimitBytes?: number);
  /** Parse and load a module (one per runtime). Throws "wasm3: parse: ..." or "wasm3: load: ...". */
  load(wasm: Uint8Array): void;
  /**
   * Link a JS function as import module.name with a wasm3 signature: 'v(ii)', 'I(iIfF)'...
   * (v void, i i32, I i64 as bigint, f f32, F f64). A function the module does not import is
   * ignored. If fn throws, the call traps and rethrows its message.
   */
  link(module: string, name: string, sig: string, fn: (...args: any[]) => number | bigint | void): void;
  /**
   * Compile every function and run the start function: a missing import ("wasm3: compile: missing
   * imported function: 'mod.name'") or an instruction wasm3 rejects fails here, not at a later call.
   */
  instantiate(): void;
  /** Call an export; i64 as bigint. A trap throws an Error with wasm3's message (or the host's). */
  call(name: string, args: Array<number | bigint>): number | bigint | undefined;
  has(name: string): boolean;
  /**
   * Linear memory, zero-copy. Detached (length 0) once memory moves or the runtime is freed: take
   * a fresh one after every call. A view keeps its runtime alive.
   */
  memory(): Uint8Array;
  memorySize(): number;
  /** Free wasm3's runtime now; every memory view is detached, linked functions are let go. */
  free(): void;
}

/** The wasm3 version the addon carries (M3_VERSION), e.g. "0.9.0". */
export function wasm3Version(): string;
