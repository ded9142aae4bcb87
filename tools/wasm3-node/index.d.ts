// Types of the wasm3-node addon (tools/wasm3-node/src/lib.rs), loaded from build/wasm3-node.node.

/** One wasm3 environment, runtime and module. */
export class Runtime {
  /** stackBytes: the interpreter stack (wasm3's m3_NewRuntime). */
  constructor(stackBytes: number);
  /** Parse and load a module (one per runtime). Throws "wasm3: parse: ..." or "wasm3: load: ...". */
  load(wasm: Uint8Array): void;
  /** Link a JS function as import module.name with a wasm3 signature: 'v(ii)', 'i(iIfF)'... */
  link(module: string, name: string, sig: string, fn: (...args: any[]) => number | bigint | void): void;
  /** Call an export; i64 as bigint. A trap throws an Error with wasm3's message (or the host's). */
  call(name: string, args: Array<number | bigint>): number | bigint | undefined;
  has(name: string): boolean;
  /** Linear memory, zero-copy. Detached (length 0) once memory moves or the runtime is freed. */
  memory(): Buffer;
  memorySize(): number;
  /** Free wasm3's runtime now; every memory view is detached. */
  free(): void;
}

/** The wasm3 version the addon carries (M3_VERSION). */
export function wasm3Version(): string;
