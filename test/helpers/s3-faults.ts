import type { S3Client } from '@aws-sdk/client-s3';

/** What a test does to one S3 command before it goes out: nothing, wait for a promise, or fail. */
export type S3Fault = undefined | { wait: Promise<void> } | { fail: Error };

/**
 * Lets a test step into the S3 commands a client sends (by command name and input) to hold
 * one back or fail it, so that the real store sees the requests in the order the test
 * needs: an attempt paused in the middle of its write, a reply that never arrives.
 */
export function interceptS3(
  s3: S3Client,
  rule: (command: string, input: { Key?: string }) => S3Fault,
): void {
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const fault = rule(context.commandName ?? '', args.input as { Key?: string });
      if (fault && 'wait' in fault) await fault.wait;
      if (fault && 'fail' in fault) throw fault.fail;
      return next(args);
    },
    { step: 'initialize', name: 'testFault' },
  );
}

/** A promise with its resolve function. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => undefined as void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
