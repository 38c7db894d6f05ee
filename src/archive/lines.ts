import { Transform, type TransformCallback } from 'node:stream';

/**
 * Splits a byte stream into lines (without the newline) and hands each to `onLine`, which
 * may return bytes to pass on. Works on bytes: a newline byte never occurs inside a UTF-8
 * multi-byte character, so no decoding is needed to split. Memory: one partial line.
 */
export class LineTransform extends Transform {
  private rest: Buffer = Buffer.alloc(0);

  constructor(private readonly onLine: (line: Buffer) => Buffer | undefined) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      let data = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
      let start = 0;
      for (let end = data.indexOf(0x0a, start); end !== -1; end = data.indexOf(0x0a, start)) {
        this.emitLine(data.subarray(start, end));
        start = end + 1;
      }
      data = data.subarray(start);
      this.rest = Buffer.from(data);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      if (this.rest.length > 0) this.emitLine(this.rest);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  private emitLine(line: Buffer): void {
    const out = this.onLine(line);
    if (out !== undefined) this.push(out);
  }
}
