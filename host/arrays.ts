// Largest and smallest of an array of any length. `Math.max(...a)` passes every element as an argument
// and overflows the stack near 10^5 elements (a 131,072-token vocabulary, a long context): arrays whose
// length comes from a file or a flag go through these loops instead.

export function maxOf(a: ArrayLike<number>, floor = -Infinity): number {
  let m = floor;
  for (let i = 0; i < a.length; i++) if (a[i] > m || Number.isNaN(a[i])) m = a[i];
  return m;
}

export function minOf(a: ArrayLike<number>, ceiling = Infinity): number {
  let m = ceiling;
  for (let i = 0; i < a.length; i++) if (a[i] < m || Number.isNaN(a[i])) m = a[i];
  return m;
}

// out.push(...items) for any length.
export function pushAll<T>(out: T[], items: ArrayLike<T>): void {
  for (let i = 0; i < items.length; i++) out.push(items[i]);
}
