import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PROJECT_DIR } from '../helpers/stack';

const FINAL_LINE =
  /^cycles (\d+), faults (\d+), rows lost (\d+), rows duplicated in the table (\d+), stale versions restored (\d+), validate problems (\d+)$/m;

/** `npm run chaos -- ARGS` to completion: its exit code and everything it printed. */
function runChaos(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn('npm', ['run', '--silent', 'chaos', '--', ...args], {
    cwd: PROJECT_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

// The guarantees of docs/architecture.md under real faults (docs/reliability.md): the quick fault harness runs its own
// private stack (PostgreSQL, MinIO, Temporal, toxiproxy), so it neither needs nor disturbs
// the shared one. Its own deadlines end it in a few minutes; the timeout is a backstop.
describe('fault harness: npm run chaos -- --quick (private stack, real faults)', function () {
  this.timeout(30 * 60_000);

  it('archives, validates and restores under faults without losing, duplicating or staling a row', async () => {
    const { code, out } = await runChaos(['--quick']);
    const match = FINAL_LINE.exec(out);
    assert.ok(match, `the run ends with the summary line\n${out}`);
    const [cycles, faults, lost, duplicated, stale, problems] = match.slice(1).map(Number);
    assert.ok(cycles! > 0, `cycles ran\n${out}`);
    assert.ok(faults! > 0, `faults were injected\n${out}`);
    assert.deepEqual(
      { lost, duplicated, stale, problems },
      { lost: 0, duplicated: 0, stale: 0, problems: 0 },
      out,
    );
    assert.equal(code, 0, `exit 0 (no failed, stuck or unfinished run)\n${out}`);
  });
});
