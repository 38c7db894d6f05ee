import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Passes bytes through unchanged while computing their SHA-256 and length; with `max`, fails
 * through `exceeded` once more than that many bytes have gone by.
 */
export class HashingPassThrough extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  constructor(
    private readonly max = Number.POSITIVE_INFINITY,
    private readonly exceeded?: (bytes: number) => never,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    try {
      if (this.bytes > this.max) {
        if (this.exceeded) this.exceeded(this.bytes);
        throw new Error(`more than ${this.max} bytes`);
      }
      this.hash.update(chunk);
      done(null, chunk);
    } catch (err) {
      done(err as Error);
    }
  }

  /** Hex digest; call once, after the stream has ended. */
  digest(): string {
    return this.hash.digest('hex');
  }
}
