import type { ActivityDeps } from './deps';
import { archiveActivities } from './archive';
import { lockActivities } from './lock';
import { restoreActivities } from './restore';
import { schemaActivities } from './schema';
import { throttleActivities } from './throttle';
import { validateActivities } from './validate';

export type { ActivityDeps } from './deps';

/** Every activity of the archiver, bound to its dependencies. The worker's only registry. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...schemaActivities(deps),
    ...lockActivities(deps),
    ...archiveActivities(deps),
    ...restoreActivities(deps),
    ...throttleActivities(deps),
    ...validateActivities(deps),
  };
}

/** Workflows proxy activities by this type only (`import type`), never by value. */
export type Activities = ReturnType<typeof createActivities>;
