import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LineTransform } from '../../src/archive/lines';

/** Runs `chunks` through a LineTransform and returns the chunks it pushed. */
async function run(chunks: string[], transform: LineTransform): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      out.push(chunk);
      done();
    },
  });
  await pipeline(Readable.from(chunks.map((c) => Buffer.from(c))), transform, sink);
  return out;
}

describe('line splitter', () => {
  it('hands over whole lines even when a line spans several chunks', async () => {
    const seen: string[] = [];
    await run(
      ['ab', 'c\nd', 'é\n\nlast'],
      new LineTransform((line) => {
        seen.push(line.toString('utf8'));
        return undefined;
      }),
    );
    assert.deepEqual(seen, ['abc', 'dé', '', 'last']);
  });

  it('re-terminates what the callback returns when asked to', async () => {
    const out = await run(
      ['a\nb\n', 'c'],
      new LineTransform((line) => Buffer.from(line.toString().toUpperCase()), { terminate: true }),
    );
    assert.equal(Buffer.concat(out).toString(), 'A\nB\nC\n');
  });

  it('passes on one chunk per input chunk, not one per line', async () => {
    // Each chunk pushed into zlib is a call on the thread pool: per-line pushes were 10x slower.
    const chunk = 'x'.repeat(99) + '\n';
    const out = await run([chunk.repeat(500), chunk.repeat(500)], new LineTransform((l) => l));
    assert.equal(out.length, 2);
    assert.equal(Buffer.concat(out).length, 1000 * 99);
  });
});
