import { archiveActivities } from './archive';
import { auditActivities } from './audit';
import { wireActivities } from './wiring';
import type { ActivityDeps } from './deps';
import { holdActivities } from './holds';
import { lockActivities } from './lock';
import { notifyActivities } from './notify';
import { planActivities } from './plan';
import { restoreActivities } from './restore';
import { schemaActivities } from './schema';
import { surveyActivities } from './survey';
import { throttleActivities } from './throttle';
import { validateActivities } from './validate';

export type { ActivityDeps } from './deps';

/** Activities whose heartbeat is their own: the lock's says its session still holds the lock. */
const OWN_HEARTBEAT = new Set(['holdTableLock']);

/**
 * Every activity of the archiver, bound to its dependencies, each heartbeating on a timer and
 * throwing classified errors (a refusal no retry can fix fails at once; a fault that passes
 * is retried). The worker's only registry.
 */
export function createActivities(deps: ActivityDeps) {
  return wireActivities(
    {
      ...planActivities(deps),
      ...schemaActivities(deps),
      ...lockActivities(deps),
      ...surveyActivities(deps),
      ...archiveActivities(deps),
      ...restoreActivities(deps),
      ...holdActivities(deps),
      ...throttleActivities(deps),
      ...validateActivities(deps),
      ...auditActivities(deps),
      ...notifyActivities(deps),
    },
    OWN_HEARTBEAT,
    deps.metrics,
  );
}

/** Workflows proxy activities by this type only (`import type`), never by value. */
export type Activities = ReturnType<typeof createActivities>;
