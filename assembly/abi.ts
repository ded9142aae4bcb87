// The host import surface: every function the WASM app may call on its host.
// One line per import, mirrored by docs/abi.md, host/engine/imports.ts and the C runtime's link table.
// Module "edge", signatures in wasm3 notation.

// v(iiii): report a failed assertion; the host turns it into one error line and stops the call.
@external("edge", "abort")
declare function host_abort(msg: usize, file: usize, line: u32, col: u32): void;

// v(ii): write `len` bytes of UTF-8 at `ptr` to the host log (stderr on a PC, the serial log frame on a board).
@external("edge", "log")
export declare function host_log(ptr: usize, len: u32): void;

// v(iii): copy `len` bytes of the edge-flash image at byte `offset` (from the image's start: the
// descriptor's offsets are image offsets) to guest memory at `dst` (a board: memcpy from memory-mapped
// flash; Node: from the image in host memory). Traps when out of range.
@external("edge", "weights_read")
export declare function weights_read(dst: usize, offset: i32, len: i32): void;

// AssemblyScript's `abort` is routed here by asconfig.json (`--use abort=...`), so the module imports
// "edge.abort" instead of "env.abort". Strings are UTF-16 with their byte length at ptr-4.
export function abort(msg: string | null, file: string | null, line: u32, col: u32): void {
  host_abort(changetype<usize>(msg), changetype<usize>(file), line, col);
  unreachable();
}
