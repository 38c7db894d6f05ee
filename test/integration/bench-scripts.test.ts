import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { PROJECT_DIR } from '../helpers/stack';

/** Runs a bench script to completion from the sources; its exit code and output. */
function runBench(script: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(
    process.execPath,
    ['--require', 'tsx/cjs', path.join(PROJECT_DIR, 'scripts', script), ...args],
    { cwd: PROJECT_DIR, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

// The benchmarks are scripts, never timed tests: at a tiny size this only proves that each
// one runs to completion against the real stack and prints the figures it promises.
describe('bench scripts at a tiny size (real stack)', function () {
  this.timeout(600_000);

  it('bench:archive prints throughput against the baseline, the ratio and peak RSS', async () => {
    const { code, out } = await runBench('bench-archive.ts', ['--rows', '2000']);
    assert.equal(code, 0, out);
    for (const figure of [
      'baseline rows/s',
      'export+upload+verify rows/s',
      'ratio',
      'delete rows/s',
      'peak RSS MiB',
    ]) {
      assert.ok(out.includes(figure), `prints ${figure}\n${out}`);
    }
    assert.match(out, /^2,000 /m, 'a row for the full size');
    assert.match(out, /^200 /m, 'a row for a tenth of it');
  });

  it('bench:impact prints p50/p95/p99 of A and B phases, their ratio and the archive rate', async () => {
    const { code, out } = await runBench('bench-impact.ts', [
      '--duration',
      '3',
      '--rounds',
      '3',
      '--scale',
      '1',
      '--rate',
      '50',
      '--archive-rows',
      '20000',
    ]);
    assert.equal(code, 0, out);
    for (const phase of ['A1', 'B1', 'A2', 'B2', 'A3', 'B3'])
      assert.match(out, new RegExp(`^${phase} `, 'm'));
    assert.match(out, /^B\/A /m);
    assert.match(out, /p95 B\/A: [\d.]+x/);
    assert.match(out, /archive rate during B: [\d,]+ rows\/s/);
  });

  it('bench:scale archives every table of every database in one run and says so', async () => {
    const { code, out } = await runBench('bench-scale.ts', ['--databases', '3', '--tables', '2']);
    assert.equal(code, 0, out);
    assert.match(out, /tables archived with every old row\s+6 of 6/);
    assert.match(out, /parent history events, total\s+[\d,]+/);
    assert.match(out, /every table finished: 6 archived/);
  });
});
