import { say } from './util';

/**
 * What the run found. The four counts are judged against the model after every cycle;
 * failures are everything else that is wrong (a run that failed or got stuck, a restore or
 * validation that could not finish, the harness's own model disagreeing with the table).
 * Any count above zero or any failure makes the run exit 1.
 */
export class Report {
  cycles = 0;
  faults = 0;
  readonly faultKinds = new Map<string, number>();
  /**
   * Rows by id. Every cycle restores and judges the whole archive again, so a row found in
   * a bad state in two cycles is one row, counted once.
   */
  readonly lostIds = new Set<string>();
  readonly duplicatedIds = new Set<string>();
  readonly staleIds = new Set<string>();
  /** Validation problems as `key: problem`, distinct over the cycles. */
  private readonly problems = new Set<string>();
  /** Problems a validation counted but did not list (it lists at most 200 per table). */
  private unlistedProblems = 0;
  readonly failures: string[] = [];
  /** Worth knowing, not a broken promise (e.g. a worker that exited by itself), with how often. */
  readonly notes = new Map<string, number>();

  get lost(): number {
    return this.lostIds.size;
  }

  get duplicated(): number {
    return this.duplicatedIds.size;
  }

  get stale(): number {
    return this.staleIds.size;
  }

  get validateProblems(): number {
    return this.problems.size + this.unlistedProblems;
  }

  validated(listed: readonly string[], total: number): void {
    for (const p of listed) this.problems.add(p);
    this.unlistedProblems = Math.max(this.unlistedProblems, total - listed.length);
  }

  fault(kind: string): void {
    this.faults++;
    this.faultKinds.set(kind, (this.faultKinds.get(kind) ?? 0) + 1);
  }

  failure(message: string): void {
    this.failures.push(message);
    say(`FAILURE: ${message}`);
  }

  note(message: string): void {
    this.notes.set(message, (this.notes.get(message) ?? 0) + 1);
    say(`note: ${message}`);
  }

  get clean(): boolean {
    return (
      this.failures.length === 0 &&
      this.lost === 0 &&
      this.duplicated === 0 &&
      this.stale === 0 &&
      this.validateProblems === 0
    );
  }

  /** The one line the run ends with (tests and docs/reliability.md read it). */
  finalLine(): string {
    return `cycles ${this.cycles}, faults ${this.faults}, rows lost ${this.lost}, rows duplicated in the table ${this.duplicated}, stale versions restored ${this.stale}, validate problems ${this.validateProblems}`;
  }

  /** The summary, ending with the final line. */
  print(seed: number): void {
    const out: string[] = ['', `seed ${seed}`];
    const kinds = [...this.faultKinds].sort((a, b) => b[1] - a[1]);
    out.push(`faults by kind: ${kinds.map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`);
    if (this.notes.size > 0) {
      out.push('notes:');
      for (const [n, times] of this.notes)
        out.push(`  - ${times > 1 ? `${times} times: ` : ''}${n.replace(/\n/g, '\n    ')}`);
    }
    if (this.failures.length > 0) {
      out.push(`failures (${this.failures.length}):`);
      for (const f of this.failures) out.push(`  - ${f.replace(/\n/g, '\n    ')}`);
    }
    out.push(this.finalLine());
    process.stdout.write(`${out.join('\n')}\n`);
  }
}
