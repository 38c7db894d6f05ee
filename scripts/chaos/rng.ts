/**
 * The harness's only source of randomness. Every decision (which fault, when, for how long,
 * which row the application touches) comes from a stream derived from the run's seed, so
 * `--seed N` replays the same sequence of decisions. Wall-clock timing still differs between
 * runs, so a replay is the same plan, not the same interleaving.
 */
export class Rng {
  private state: number;

  private constructor(state: number) {
    this.state = state >>> 0;
  }

  /**
   * An independent stream per purpose: the fault plan does not shift when the application
   * happens to issue one more statement in a slower run.
   */
  static stream(seed: number, purpose: string): Rng {
    // FNV-1a over the seed and the purpose's name.
    let hash = 0x811c9dc5;
    for (const ch of `${seed}:${purpose}`) {
      hash ^= ch.codePointAt(0)!;
      hash = Math.imul(hash, 0x01000193);
    }
    return new Rng(hash);
  }

  /** A float in [0, 1) (mulberry32: small, fast, good enough for test plans). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** One of the items, each as likely as its weight. */
  weighted<T>(items: readonly { weight: number; value: T }[]): T {
    const total = items.reduce((sum, item) => sum + item.weight, 0);
    let at = this.next() * total;
    for (const item of items) {
      at -= item.weight;
      if (at < 0) return item.value;
    }
    return items.at(-1)!.value;
  }
}
