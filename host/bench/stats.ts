// Timing statistics: these machines are noisy, so every figure is a min/median over repeats.
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// Calls per timed repeat so that one repeat lasts about `targetSeconds` (at least 1 call).
export function calibrate(oneCallSeconds: number, targetSeconds: number): number {
  return Math.max(1, Math.min(100000, Math.round(targetSeconds / Math.max(oneCallSeconds, 1e-7))));
}
