import { cancellationSignal } from '@temporalio/activity';
import { findTable } from '../src/config';
import { transactionStatus } from '../src/postgres/sql/table-lock';
import { TableNotFoundError, TableShapeError } from '../src/shared/errors';
import type { ValidateTableInput, ValidateTableResult } from '../src/shared/validate-types';
import { mapLimit } from '../src/util/concurrency';
import { TableCheck } from '../src/validate/check-table';
import { withTable } from './context';
import type { ActivityDeps } from './deps';
import { heartbeating, workflowIdOfActivity } from './heartbeat';
import { recordAudit } from './audit';

/** Objects read back at once within one table: the store's latency, not its bandwidth, bounds a validation. */
const OBJECTS_IN_FLIGHT = 4;

function isMissingDatabase(err: unknown): boolean {
  return (err as { code?: unknown }).code === '3D000'; // invalid_catalog_name
}

export function validateActivities(deps: ActivityDeps) {
  /**
   * What only the source database can say. The sampled deleted rows are looked up: a row its
   * receipt says was deleted must be gone, or changed since (re-inserted by someone); the
   * identical row still there means the delete did not happen as its receipt says. And a
   * delete intent without a receipt is checked against the transaction it names.
   */
  async function sampleCheck(check: TableCheck): Promise<number> {
    const rows = check.sample.rows();
    if (rows.length === 0 && check.intentsWithoutReceipt.length === 0) return 0;
    try {
      return await withTable(deps, check.input.table, async (ctx, client) => {
        await check.unrecordedDeletes((txid) => transactionStatus(client, txid));
        if (rows.length === 0) return 0;
        const { rows: found } = await client.query<{ key: string; fingerprint: string }>(
          ctx.sql.fingerprintsOf(),
          [rows.map((r) => r.key)],
        );
        const current = new Map(found.map((r) => [r.key, r.fingerprint]));
        for (const r of rows) {
          if (current.get(r.key) !== r.fingerprint) continue;
          check.problems.add(
            r.object,
            `row ${ctx.table.primaryKey} = ${r.key} is still in the source table, identical, though the deletion receipt says it was deleted`,
          );
        }
        return rows.length;
      });
    } catch (err) {
      const gone =
        err instanceof TableNotFoundError ||
        err instanceof TableShapeError ||
        isMissingDatabase(err);
      if (!gone) throw err;
      check.problems.add(
        check.archive.prefix,
        `sample check not possible: ${(err as Error).message}`,
      );
      return 0;
    }
  }

  return {
    /**
     * Validates one table's archive from the bucket alone (src/validate/check-table.ts), then
     * looks a random sample of its deleted rows up in the source database. Every problem is
     * returned, never thrown; only a store or database that does not answer fails the
     * activity, so Temporal retries it. Changes nothing but the audit trail, which gets its
     * record: safe to run at any time, any number of
     * times.
     */
    validateTable(input: ValidateTableInput): Promise<ValidateTableResult> {
      return heartbeating(async (details) => {
        const ref = input.table;
        // An unconfigured table is bad input, not an empty archive.
        const { requireEncryption } = findTable(deps.config, ref);
        const archive = deps.store.table(ref);
        const { objects } = await archive.listObjects({
          startDate: input.startDate,
          endDate: input.endDate,
        });
        // A listing of every key: sidecar documents that lost their data object and the
        // restore receipts show only there.
        const keys = await archive.listKeys();
        const check = new TableCheck(
          input,
          archive,
          keys,
          cancellationSignal(),
          details,
          requireEncryption,
        );
        check.orphans();
        await mapLimit(objects, OBJECTS_IN_FLIGHT, (obj) => check.object(obj));
        await check.documents();
        check.reportMissingSchemas();
        const sampled = await sampleCheck(check);
        const result = {
          ...ref,
          objects: check.objects,
          rows: check.rows,
          sampled,
          problems: check.problems.list(),
          problemCount: check.problems.count,
        };
        await recordAudit(deps, 'validate', `validate:${workflowIdOfActivity()}`, ref, {
          objects: result.objects,
          rows: result.rows,
          sampled,
          problemCount: result.problemCount,
          ...(input.startDate && { startDate: input.startDate }),
          ...(input.endDate && { endDate: input.endDate }),
        });
        return result;
      });
    },
  };
}
