import type { ClientBase } from 'pg';
import type { ThrottleSignals } from '../shared/throttle';
import { otherSessions } from './sql/other-sessions';
import { replicaLag } from './sql/replica-lag';
import { vacuumRunning } from './sql/vacuum-progress';
import { walArchiveBacklog } from './sql/wal-archive-backlog';

/** Reads the load signals throttling decides on, for one table of the connected database. */
export type SignalReader = (
  client: ClientBase,
  table: { schema: string; name: string },
) => Promise<ThrottleSignals>;

/** The signals as the database's own views show them. Reads only. */
export const readDatabaseSignals: SignalReader = async (client, table) => {
  const lag = await replicaLag(client);
  const wal = await walArchiveBacklog(client);
  return {
    replicaLagMs: lag.lag_ms === null ? null : Math.round(lag.lag_ms),
    walReadyFiles: wal.ready_files,
    walArchiverFailing: wal.failing,
    vacuumRunning: await vacuumRunning(client, table.schema, table.name),
    ...(await otherSessions(client)),
  };
};
