import { Transform, type TransformCallback } from 'node:stream';

const NEWLINE = Buffer.from('\n');

export interface LineTransformOptions {
  /** Each piece `onLine` returns is followed by a newline. */
  terminate?: boolean;
  /** A longer line fails the stream with `tooLong(bytes)` instead of growing without bound. */
  maxLineBytes?: number;
  tooLong?: (bytes: number) => Error;
}

/**
 * Splits a byte stream into lines (without the newline) and hands each to `onLine`, which
 * may return bytes to pass on. Works on bytes: a newline byte never occurs inside a UTF-8
 * multi-byte character, so no decoding is needed to split. Memory: one partial line, kept as
 * the chunks it arrived in (joined once, when its newline comes) and at most `maxLineBytes`.
 */
export class LineTransform extends Transform {
  private partial: Buffer[] = [];
  private partialBytes = 0;

  constructor(
    private readonly onLine: (line: Buffer) => Buffer | undefined,
    private readonly options: LineTransformOptions = {},
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      const out: Buffer[] = [];
      let start = 0;
      for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, start)) {
        this.hold(end - start);
        const piece = chunk.subarray(start, end);
        const line = this.partial.length > 0 ? Buffer.concat([...this.partial, piece]) : piece;
        this.partial = [];
        this.partialBytes = 0;
        this.passOn(line, out);
        start = end + 1;
      }
      if (start < chunk.length) {
        this.hold(chunk.length - start);
        // A copy: the chunk's memory may be reused by the stream that produced it.
        this.partial.push(Buffer.from(chunk.subarray(start)));
        this.partialBytes += chunk.length - start;
      }
      // One push per input chunk, not per line: each push into zlib is an async call on the
      // thread pool, and one per 300-byte line made compression ten times slower.
      done(null, out.length > 0 ? Buffer.concat(out) : undefined);
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      const out: Buffer[] = [];
      if (this.partialBytes > 0) this.passOn(Buffer.concat(this.partial), out);
      done(null, out.length > 0 ? Buffer.concat(out) : undefined);
    } catch (err) {
      done(err as Error);
    }
  }

  /** Refuses to let the current line grow past the limit. */
  private hold(more: number): void {
    const { maxLineBytes, tooLong } = this.options;
    const bytes = this.partialBytes + more;
    if (maxLineBytes !== undefined && bytes > maxLineBytes) {
      throw tooLong ? tooLong(bytes) : new Error(`a line is longer than ${maxLineBytes} bytes`);
    }
  }

  private passOn(line: Buffer, out: Buffer[]): void {
    const piece = this.onLine(line);
    if (piece === undefined) return;
    out.push(piece);
    if (this.options.terminate) out.push(NEWLINE);
  }
}
