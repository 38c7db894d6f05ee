import { Transform, type TransformCallback } from 'node:stream';

const NEWLINE = Buffer.from('\n');

/**
 * Splits a byte stream into lines (without the newline) and hands each to `onLine`, which
 * may return bytes to pass on. Works on bytes: a newline byte never occurs inside a UTF-8
 * multi-byte character, so no decoding is needed to split. Memory: one partial line.
 */
export class LineTransform extends Transform {
  private rest: Buffer = Buffer.alloc(0);

  /** With `terminate`, each piece `onLine` returns is followed by a newline. */
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
        this.passOn(data.subarray(start, end), out);
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
      const out: Buffer[] = [];
      if (this.rest.length > 0) this.passOn(this.rest, out);
      done(null, out.length > 0 ? Buffer.concat(out) : undefined);
    } catch (err) {
      done(err as Error);
    }
  }

  private passOn(line: Buffer, out: Buffer[]): void {
    const piece = this.onLine(line);
    if (piece === undefined) return;
    out.push(piece);
    if (this.options.terminate) out.push(NEWLINE);
  }
}
