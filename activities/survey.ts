import { log } from '@temporalio/activity';
import { readBacklog } from '../src/archive/backlog';
import { surveyTable } from '../src/archive/survey';
import type { SurveyTableInput, TableSurvey } from '../src/shared/archive-types';
import { recordAudit } from './audit';
import { metricReadFailed } from './archive';
import { withTable } from './context';
import type { ActivityDeps } from './deps';

export function surveyActivities(deps: ActivityDeps) {
  return {
    /**
     * What a run reads once it holds the table's lock (src/archive/survey.ts): the days held,
     * and the old rows left in the table and why. Rows kept by legal holds are logged and
     * recorded in the audit trail. Reads the table's backlog for its metrics.
     */
    surveyTable(input: SurveyTableInput): Promise<TableSurvey> {
      return withTable(deps, input.table, async (ctx, client) => {
        const survey = await surveyTable(
          {
            client,
            sql: ctx.sql,
            archive: ctx.archive,
            legalHold: ctx.table.legalHold,
            objectLockEnabled: () => deps.store.bucket.objectLockEnabled(),
          },
          input.cutoff,
        );
        const { held, ...left } = survey.skipped;
        if (held) {
          for (const h of held) log.warn('rows kept in the table by a legal hold', { ...h });
          const event = `legal-hold-skip:${input.cutoff}`;
          await recordAudit(deps, 'legal-hold-skip', event, input.table, {
            cutoff: input.cutoff,
            held,
          });
        }
        if (left.nullKey + left.outOfRange > 0)
          log.warn('rows the archive leaves in the table', { table: ctx.sql.table, ...left });
        if (deps.metrics) {
          const backlog = await readBacklog(client, ctx.sql, input.cutoff).catch(metricReadFailed);
          if (backlog) deps.metrics.backlog(input.table, backlog);
        }
        return survey;
      });
    },
  };
}
