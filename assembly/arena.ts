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
}

// The arena's high-water mark in bytes of linear memory (what a board must have free).
export function arena_top(): usize {
  return top == 0 ? heapStart() : top;
}
