/** The innermost message of a failure chain (activity, child workflow, ...): what actually went wrong. */
export function innermostMessage(err: unknown): string {
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return cause instanceof Error ? cause.message : String(cause);
}
