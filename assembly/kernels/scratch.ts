// Kernel scratch: one buffer that grows to the largest request and is then reused, so a kernel
// call never allocates once the model's first token has run.
import { arena_alloc } from '../arena';

let scratchPtr: usize = 0;
let scratchBytes: u32 = 0;

export function scratch(bytes: u32): usize {
  if (bytes > scratchBytes) {
    scratchPtr = arena_alloc(bytes);
    if (scratchPtr == 0) unreachable(); // out of linear memory: the host's plan reserves it up front
    scratchBytes = bytes;
  }
  return scratchPtr;
}
