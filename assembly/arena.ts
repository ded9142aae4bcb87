// One bump arena over linear memory: the host plans every buffer up front, so nothing is freed
// one by one and no allocation happens per token. `arena_reset` drops everything at once.

let top: usize = 0;

function heapStart(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

// Returns a 16-byte aligned block of `bytes`, growing memory as needed; 0 when memory cannot grow.
export function arena_alloc(bytes: u32): usize {
  if (top == 0) top = heapStart();
  const ptr = top;
  const end = (ptr + <usize>bytes + 15) & ~(<usize>15);
  const have = <usize>memory.size() << 16;
  if (end > have) {
    const pages = <i32>((end - have + 0xffff) >> 16);
    if (memory.grow(pages) < 0) return 0;
  }
  top = end;
  return ptr;
}

export function arena_reset(): void {
  top = heapStart();
  scratchBytes = 0; // the scratch block was in the dropped arena
}

// Kernel scratch: one block that grows to the largest request and is then reused, so a kernel call
// never allocates once the first token has run. It lives in the arena and dies with arena_reset.
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

// The arena's high-water mark in bytes of linear memory (what a board must have free).
export function arena_top(): usize {
  return top == 0 ? heapStart() : top;
}
