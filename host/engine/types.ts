// The engine interface: load a .wasm with the project's host imports and call its exports.
// V8 (host/engine/v8.ts) and wasm3 (host/engine/wasm3.ts) implement it; every test runs on both.

export type EngineName = 'v8' | 'wasm3';

// One host import. `sig` is wasm3's signature notation, e.g. 'v(ii)' or 'i(iIf)':
// v void, i i32, I i64, f f32, F f64. V8 ignores it; wasm3 links by name plus signature.
export interface HostFunction {
  module: string;
  name: string;
  sig: string;
  fn: (...args: any[]) => number | bigint | void;
}

export interface InstanceOptions {
  stackBytes?: number;       // wasm3 interpreter stack (ignored by V8)
  memoryLimitBytes?: number; // cap on linear memory; growth past it fails like on a board
}

export interface Instance {
  readonly engine: EngineName;
  // Call an export; i64 values are bigint. A trap throws an Error carrying the engine's message.
  call(name: string, ...args: (number | bigint)[]): number | bigint;
  has(name: string): boolean;
  // A view of linear memory. Take a fresh one after every call: memory may have grown.
  memory(): Uint8Array;
  close(): void;
}

export interface Engine {
  readonly name: EngineName;
  // Host functions get the instance through the getter, so they can read guest memory.
  instantiate(wasm: Uint8Array, imports: (self: () => Instance) => HostFunction[], opts?: InstanceOptions): Instance;
}
