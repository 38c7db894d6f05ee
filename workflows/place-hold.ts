import { proxyActivities, upsertSearchAttributes, uuid4 } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PlaceHoldInput, PlaceHoldResult } from '../src/shared/restore-types';
import { tableSearchAttributes } from '../src/shared/search-attributes';
import { resolveTableRef } from '../src/shared/table-ref';
import { SHORT_IO } from './activity-options';
import { patienceInDetails } from './patience';
import { withOutcome } from './run-metadata';

const { placeHold } = proxyActivities<Activities>(SHORT_IO);

/**
 * Places a legal hold on days of a table without editing the config: the hold (who, why,
 * when) is written to the bucket, the archive leaves those rows in the table from its next
 * run on, and objects already archived from those days get an S3 Object Lock legal hold
 * where the bucket has Object Lock. `hold release` ends it, by the id this returns.
 */
export async function PlaceHold(input: PlaceHoldInput): Promise<PlaceHoldResult> {
  const table = resolveTableRef(input);
  upsertSearchAttributes(tableSearchAttributes(table));
  const patience = patienceInDetails();
  // uuid4 is the workflow's own seeded random: the same id on every replay.
  const id = `legal-${uuid4().slice(0, 8)}`;
  return withOutcome(
    () =>
      patience.run('place the hold', () =>
        placeHold({
          table,
          id,
          reason: input.reason,
          days: input.days,
          placedBy: input.placedBy,
        }),
      ),
    () => 'placed',
  );
}
