import type { ClientBase } from 'pg';

/** The server's version as it prints it, e.g. `15.20 (Debian 15.20-0+deb12u1)`. */
export async function serverVersion(client: ClientBase): Promise<string> {
  const { rows } = await client.query<{ version: string }>(
    `select current_setting('server_version') as version`,
  );
  return rows[0]?.version ?? 'unknown';
}
