import { archiveActivities } from './archive';
import { classifyErrors } from './classify-errors';
import type { ActivityDeps } from './deps';
import { lockActivities } from './lock';
import { planActivities } from './plan';
import { restoreActivities } from './restore';
import { schemaActivities } from './schema';
import { throttleActivities } from './throttle';
import { validateActivities } from './validate';

export type { ActivityDeps } from './deps';

/**
 * Every activity of the archiver, bound to its dependencies, each throwing classified errors
 * (a refusal no retry can fix fails at once; a fault that passes is retried). The worker's
 * only registry.
 */
export function createActivities(deps: ActivityDeps) {
  return classifyErrors({
    ...planActivities(deps),
    ...schemaActivities(deps),
    ...lockActivities(deps),
    ...archiveActivities(deps),
    ...restoreActivities(deps),
    ...throttleActivities(deps),
    ...validateActivities(deps),
  });
}

/** Workflows proxy activities by this type only (`import type`), never by value. */
export type Activities = ReturnType<typeof createActivities>;
