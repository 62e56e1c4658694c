/** Deterministic randomness for the seeder and the benchmarks: the same seed, the same data and draws. */

/** mulberry32: a small, fast 32-bit generator; uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform draw in [0, 1), as `mulberry32` and Math.random give. */
export type Rand = () => number;

/**
 * A stream of draws for one item (`index`) and one purpose of a seeded run: the same seed, index
 * and purpose, the same draws, whatever the other items drew (randomized tests replay one item).
 */
export function streamOf(seed: number, index: number, purpose: number): Rand {
  return mulberry32((seed ^ Math.imul(index + 1, 0x9e3779b1) ^ Math.imul(purpose, 0x85ebca6b)) >>> 0);
}

/** One of the values, drawn with probability ∝ its weight. */
export function pick<T>(rand: Rand, weighted: [T, number][]): T {
  const total = weighted.reduce((a, [, w]) => a + w, 0);
  let r = rand() * total;
  for (const [v, w] of weighted) if ((r -= w) < 0) return v;
  return (weighted.at(-1) as [T, number])[0];
}

/** Rank k (0-based) drawn with probability ∝ 1/(k+1)^s, by binary search over the cumulative weights. */
export class Zipf {
  private readonly cdf: Float64Array;
  constructor(n: number, s: number) {
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) this.cdf[k] = sum += 1 / (k + 1) ** s;
  }
  get total(): number {
    return this.cdf[this.cdf.length - 1] as number;
  }
  /** The share of all draws that fall on the first `k` ranks. */
  shareOfTop(k: number): number {
    return k <= 0 ? 0 : (this.cdf[Math.min(k, this.cdf.length) - 1] as number) / this.total;
  }
  draw(rand: () => number): number {
    const u = rand() * this.total;
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Fisher–Yates in place with the given generator: the same seed, the same order. */
export function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
