import { runDoctor, type CheckResult } from '../doctor';
import type { CommandContext } from './context';

export interface DoctorCommandOptions {
  database?: string;
  table?: string;
}

export function formatCheck(result: CheckResult): string {
  return `${result.ok ? 'ok  ' : 'FAIL'}  ${result.subject}: ${result.detail}`;
}

/** Prints one line per check; exit code 1 when any check failed. */
export async function doctorCommand(
  ctx: CommandContext,
  options: DoctorCommandOptions,
): Promise<number> {
  const results = await runDoctor({
    config: ctx.config,
    env: ctx.env,
    filter: { database: options.database, table: options.table },
    onResult: (r) => ctx.out(formatCheck(r)),
  });
  const failed = results.filter((r) => !r.ok).length;
  ctx.out(
    failed === 0
      ? `all ${results.length} checks passed`
      : `${failed} of ${results.length} checks failed`,
  );
  return failed === 0 ? 0 : 1;
}
