// The host side of the import surface declared in assembly/abi.ts (and docs/abi.md).
// Every guest pointer is checked against linear memory before it is read. Guest pointers and lengths
// are u32: an engine hands an i32 argument over as a signed number, so each is read with >>> 0.
import type { HostFunction, Instance } from './types.ts';

export class GuestTrap extends Error {}

export function checkedBytes(mem: Uint8Array, ptr: number, len: number, what: string): Uint8Array {
  ptr >>>= 0;
  len >>>= 0;
  if (ptr + len > mem.length) {
    throw new GuestTrap(`${what}: guest range [${ptr}, ${ptr + len}) is outside linear memory (${mem.length} bytes)`);
  }
  return mem.subarray(ptr, ptr + len);
}

// An AssemblyScript string: UTF-16LE with its byte length in the u32 before it.
export function readAsString(mem: Uint8Array, ptr: number): string {
  ptr >>>= 0;
  if (ptr === 0) return '';
  if (ptr < 4) throw new GuestTrap(`string header: guest pointer ${ptr} has no length before it`);
  const lenBytes = checkedBytes(mem, ptr - 4, 4, 'string header');
  const len = (lenBytes[0] | (lenBytes[1] << 8) | (lenBytes[2] << 16) | (lenBytes[3] << 24)) >>> 0;
  const body = checkedBytes(mem, ptr, len, 'string');
  return Buffer.from(body).toString('utf16le');
}

export interface ImportHandlers {
  log?: (line: string) => void;
  // The edge-flash image the app runs, read through edge.weights_read from its start (host/model/runtime.ts).
  weights?: Uint8Array;
}

export function baseImports(handlers: ImportHandlers = {}): (self: () => Instance) => HostFunction[] {
  return (self) => [
    {
      module: 'edge', name: 'abort', sig: 'v(iiii)',
      fn: (msg: number, file: number, line: number, col: number) => {
        const mem = self().memory();
        throw new GuestTrap(`wasm abort: ${readAsString(mem, msg)} at ${readAsString(mem, file)}:${line}:${col}`);
      },
    },
    {
      module: 'edge', name: 'log', sig: 'v(ii)',
      fn: (ptr: number, len: number) => {
        const text = Buffer.from(checkedBytes(self().memory(), ptr, len, 'log')).toString('utf8');
        (handlers.log ?? ((s: string) => process.stderr.write(s + '\n')))(text);
      },
    },
    {
      module: 'edge', name: 'weights_read', sig: 'v(iii)',
      fn: (dst: number, offset: number, len: number) => {
        const img = handlers.weights;
        if (!img) throw new GuestTrap('weights_read: this instance has no weight image');
        offset >>>= 0;
        len >>>= 0;
        if (offset + len > img.length) {
          throw new GuestTrap(`weights_read: image range [${offset}, ${offset + len}) is outside the weight image (${img.length} bytes)`);
        }
        checkedBytes(self().memory(), dst, len, 'weights_read').set(img.subarray(offset, offset + len));
      },
    },
  ];
}
