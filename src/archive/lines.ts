import { Transform, type TransformCallback } from 'node:stream';

const NEWLINE = Buffer.from('\n');

/**
 * Splits a byte stream into lines (without the newline) and hands each to `onLine`, which
 * may return bytes to pass on. Works on bytes: a newline byte never occurs inside a UTF-8
 * multi-byte character, so no decoding is needed to split. Memory: one partial line.
 */
export class LineTransform extends Transform {
  private rest: Buffer = Buffer.alloc(0);

  /**
   * `onLine` may return bytes to pass on; with `terminate`, each is followed by a newline.
   */
  constructor(
    private readonly onLine: (line: Buffer) => Buffer | undefined,
    private readonly options: { terminate?: boolean } = {},
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      let data = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
      const out: Buffer[] = [];
      let start = 0;
      for (let end = data.indexOf(0x0a, start); end !== -1; end = data.indexOf(0x0a, start)) {
        const line = this.onLine(data.subarray(start, end));
        if (line !== undefined) out.push(line);
        if (line !== undefined && this.options.terminate) out.push(NEWLINE);
        start = end + 1;
      }
      data = data.subarray(start);
      this.rest = Buffer.from(data);
      // One push per input chunk, not per line: each push into zlib is an async call on the
      // thread pool, and one per 300-byte line made compression ten times slower.
      done(null, out.length > 0 ? Buffer.concat(out) : undefined);
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      const line = this.rest.length > 0 ? this.onLine(this.rest) : undefined;
      done(null, line && this.options.terminate ? Buffer.concat([line, NEWLINE]) : line);
    } catch (err) {
      done(err as Error);
    }
  }
}
