import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { RestorePageInput, RestorePlan, RestoreResult } from '../../src/shared/restore-types';
import type { ValidateResult, ValidateTableResult } from '../../src/shared/validate-types';
import { existingServerForSuite, withInMemoryActivities } from '../helpers/worker';

const TABLE = { database: 'app', schema: 'public', table: 'audit_log' };

// Restore's and Validate's own logic on the real Temporal server, with their activities in
// memory: paging, and problems kept to a bounded list. No PostgreSQL or MinIO.
describe('Restore and Validate workflows (activities in memory, real Temporal server)', function () {
  this.timeout(120_000);
  const env = existingServerForSuite();

  async function execute<R>(
    workflow: 'Restore' | 'Validate',
    input: unknown,
    activities: Partial<Activities>,
  ): Promise<R> {
    return withInMemoryActivities(
      env(),
      activities,
      (taskQueue) =>
        env().client.workflow.execute(workflow, {
          taskQueue,
          workflowId: `test-${workflow}-${randomUUID()}`,
          args: [input],
        }) as Promise<R>,
    );
  }

  it('restores page after page, each object once, and carries only a page of keys at a time', async () => {
    // 7 objects in pages of 3: the workflow asks for the next page after the last key.
    const all = Array.from({ length: 7 }, (_, i) => `o/${String(i).padStart(2, '0')}.jsonl.gz`);
    const pages: (string | undefined)[] = [];
    const restored: string[] = [];
    const plan: RestorePlan = {
      source: TABLE,
      target: { ...TABLE, table: 'side' },
      lines: 'deleted',
      objects: 7,
      toRestore: 7,
      rows: 70,
      days: [],
      columnPlans: [],
      decision: [],
      page: [],
      more: false,
    };
    const result = await execute<RestoreResult>(
      'Restore',
      { ...TABLE, targetTable: 'side' },
      {
        planRestore: () => Promise.resolve(plan),
        restorePage: (input: RestorePageInput) => {
          pages.push(input.after);
          const from = input.after === undefined ? 0 : all.indexOf(input.after) + 1;
          const objects = all.slice(from, from + 3);
          return Promise.resolve({ objects, more: from + 3 < all.length });
        },
        restoreObject: (input) => {
          restored.push(input.object);
          return Promise.resolve({
            object: input.object,
            rows: 10,
            inserted: 10,
            overwritten: 0,
            skipped: 0,
            identical: 0,
          });
        },
      },
    );
    assert.deepEqual(pages, [undefined, all[2], all[5]]);
    assert.deepEqual([...restored].sort(), all);
    assert.equal(result.outcome === 'restored' && result.rows, 70);
    assert.equal(result.outcome === 'restored' && result.objects, 7);
  });

  it('restores into a side table named with quotes around a name that holds a dot, and refuses a name that is not one', async () => {
    const targets: unknown[] = [];
    const planOnly: Partial<Activities> = {
      planRestore: (input) => {
        targets.push(input.target);
        // A plan with nothing to restore: the run ends after planning.
        return Promise.resolve({
          source: TABLE,
          target: input.target,
          lines: 'deleted',
          objects: 0,
          toRestore: 0,
          rows: 0,
          days: [],
          columnPlans: [],
          decision: [],
          page: [],
          more: false,
        });
      },
    };
    for (const targetTable of ['"side.x"', 'other."a.b"', '"we ""quote"""']) {
      await execute<RestoreResult>('Restore', { ...TABLE, targetTable }, planOnly);
    }
    assert.deepEqual(targets, [
      { database: 'app', schema: 'public', table: 'side.x' },
      { database: 'app', schema: 'other', table: 'a.b' },
      { database: 'app', schema: 'public', table: 'we "quote"' },
    ]);
    // Three names, or an unclosed quote: which table is meant is not for the archiver to guess.
    for (const targetTable of ['a.b.c', '"side']) {
      const failed = await execute<RestoreResult>(
        'Restore',
        { ...TABLE, targetTable },
        planOnly,
      ).catch((err: Error) => err);
      assert.ok(failed instanceof Error, `${targetTable} is refused`);
      assert.match(
        (failed as Error & { cause?: Error }).cause?.message ?? '',
        /"targetTable" .* is not a table name: write table or schema\.table/,
      );
    }
    assert.equal(targets.length, 3, 'nothing was planned for a refused name');
  });

  it('lists a table that could not be validated as a problem of that table, and still validates the others', async () => {
    const tables = ['a', 'b', 'c'].map((table) => ({ ...TABLE, table }));
    const problems = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ key: `k${i}`, problem: 'is missing' }));
    const result = await execute<ValidateResult>(
      'Validate',
      {},
      {
        planRun: () =>
          Promise.resolve({
            tables,
            limits: {
              maxParallelTables: 2,
              maxParallelDatabases: 1,
              maxParallelTablesPerDatabase: 2,
            },
          }),
        validateTable: (input): Promise<ValidateTableResult> => {
          if (input.table.table === 'b') {
            // What the activity wiring makes of a refusal no retry can fix.
            return Promise.reject(
              ApplicationFailure.nonRetryable(
                'connect ECONNREFUSED 127.0.0.1:9000',
                'StoreRefusedError',
              ),
            );
          }
          // Table c has more problems than its list holds.
          const count = input.table.table === 'c' ? input.maxProblems + 5 : 0;
          return Promise.resolve({
            ...input.table,
            objects: 3,
            rows: 30,
            sampled: 5,
            problems: problems(Math.min(count, input.maxProblems)),
            problemCount: count,
          });
        },
      },
    );
    assert.deepEqual(
      result.tables.map((t) => [t.table, t.problemCount]),
      [
        ['a', 0],
        ['b', 1],
        ['c', 205],
      ],
    );
    assert.match(
      result.tables[1]!.problems[0]!.problem,
      /could not validate this table: .*ECONNREFUSED/,
    );
    assert.equal(result.tables[2]!.problems.length, 200);
    assert.equal(result.truncated, true);
    assert.equal(result.problems, 206);
  });
});
