/**
 * Turns the lines of a COPY in text format into archived lines, in the worker, so that
 * PostgreSQL only renders each column as text. An archived line is byte for byte what
 * `json_object(names, values::text[])::text` gives in PostgreSQL (TableSql.rowJson): the
 * delete step recomputes that in PostgreSQL for a sample of the rows it deletes by version
 * (and for every row it deletes by content), so a line built here that differed from it in
 * any byte would roll its batch back or leave its row in the table, never delete another.
 *
 * COPY text format (CopyAttributeOutText): fields separated by a tab, NULL as `\N`; a
 * backslash before b f n r t v stands for that control character, before any other byte for
 * the byte itself (`\\` is a backslash); other control characters appear raw. JSON as
 * PostgreSQL writes it (escape_json): `"` and `\` escaped, \b \f \n \r \t as such, any other
 * byte below 0x20 as \u00xx (lowercase hex); every other byte, UTF-8 included, as it is.
 */

const TAB = 0x09;
const BACKSLASH = 0x5c;
const QUOTE = 0x22;

/** The control character a COPY escape stands for (`\b` is 0x08, ...), by the escape's letter. */
const COPY_ESCAPES: Readonly<Record<number, number>> = {
  0x62: 0x08, // b
  0x66: 0x0c, // f
  0x6e: 0x0a, // n
  0x72: 0x0d, // r
  0x74: 0x09, // t
  0x76: 0x0b, // v
};

/** The byte a COPY backslash escape stands for, by the byte after the backslash. */
const escaped = (letter: number): number => COPY_ESCAPES[letter] ?? letter;

/** The two-character JSON escape of the bytes that have one (escape_json), by byte. */
const JSON_ESCAPES: Readonly<Record<number, string>> = {
  0x08: '\\b',
  0x0c: '\\f',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x22: '\\"',
  0x5c: '\\\\',
};

/**
 * One exported row: its timestamp column as epoch µs, its version (ctid and xmin, as text),
 * its key and timestamp as text, its line.
 */
export interface CopiedRow {
  micros: bigint;
  ctid: string;
  xmin: string;
  key: string;
  timestamp: string;
  line: Buffer;
}

/** The fields before the columns: the timestamp as epoch µs, the ctid, the xmin. */
const LEADING = 3;

/**
 * Builds archived lines from COPY lines whose first fields are the timestamp as epoch µs,
 * the row's ctid and xmin, and whose other fields are the table's columns as text, in
 * `columns` order.
 */
export class CopyLineReader {
  /** `"name" : ` of each column, JSON-escaped once; the second and later with `, ` before. */
  private readonly prefixes: Buffer[];
  private readonly prefixBytes: number;

  constructor(
    columns: readonly string[],
    private readonly keyIndex: number,
    private readonly timestampIndex: number,
  ) {
    this.prefixes = columns.map((name, i) =>
      Buffer.concat([
        Buffer.from(i === 0 ? '{' : ', '),
        // JSON.stringify escapes a string exactly as escape_json does (and a name from the
        // catalog holds no lone surrogate, the one case where they would differ).
        Buffer.from(JSON.stringify(name), 'utf8'),
        Buffer.from(' : '),
      ]),
    );
    this.prefixBytes = this.prefixes.reduce((sum, p) => sum + p.length, 0);
  }

  read(copyLine: Buffer): CopiedRow {
    const fields = splitFields(copyLine);
    if (fields.length !== this.prefixes.length + LEADING)
      throw new Error(
        `COPY gave a line of ${fields.length} fields where ${this.prefixes.length + LEADING} were expected`,
      );
    const out = Buffer.allocUnsafe(this.prefixBytes + jsonBound(copyLine));
    let at = 0;
    for (let i = 0; i < this.prefixes.length; i++) {
      at += this.prefixes[i]!.copy(out, at);
      const [start, end] = fields[i + LEADING]!;
      if (end - start === 2 && copyLine[start] === BACKSLASH && copyLine[start + 1] === 0x4e) {
        at += out.write('null', at, 'latin1');
        continue;
      }
      out[at++] = QUOTE;
      at = writeJsonBody(copyLine, start, end, out, at);
      out[at++] = QUOTE;
    }
    out[at++] = 0x7d; // }
    const field = (i: number) => copyText(copyLine, ...fields[i + LEADING]!);
    return {
      micros: BigInt(copyLine.toString('latin1', ...fields[0]!)),
      ctid: copyLine.toString('latin1', ...fields[1]!),
      xmin: copyLine.toString('latin1', ...fields[2]!),
      key: field(this.keyIndex),
      timestamp: field(this.timestampIndex),
      line: out.subarray(0, at),
    };
  }
}

/**
 * Room enough for the JSON of a COPY line's fields: twice its bytes (a quote or a backslash
 * escape takes two), four more for each control byte or backslash (a raw control byte and
 * `\v` become \u00xx), and a little for the brace. Tight, so a row of many megabytes takes
 * about twice its size, not six times.
 */
function jsonBound(line: Buffer): number {
  let wide = 0;
  for (let i = 0; i < line.length; i++) if (line[i]! < 0x20 || line[i] === BACKSLASH) wide++;
  return 2 * line.length + 4 * wide + 8;
}

/** [start, end) of each tab-separated field (a raw tab never occurs inside one). */
function splitFields(line: Buffer): [number, number][] {
  const fields: [number, number][] = [];
  let start = 0;
  for (let tab = line.indexOf(TAB); tab !== -1; tab = line.indexOf(TAB, start)) {
    fields.push([start, tab]);
    start = tab + 1;
  }
  fields.push([start, line.length]);
  return fields;
}

/** Writes the COPY-escaped bytes [start, end) of `src` as the body of a JSON string. */
function writeJsonBody(src: Buffer, start: number, end: number, out: Buffer, at: number): number {
  let plain = start;
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    if (b >= 0x20 && b !== QUOTE && b !== BACKSLASH) continue;
    at += src.copy(out, at, plain, i);
    let byte = b;
    if (b === BACKSLASH && i + 1 < end) byte = escaped(src[++i]!);
    at += out.write(jsonEscape(byte), at, 'latin1');
    plain = i + 1;
  }
  return at + src.copy(out, at, plain, end);
}

/** A byte's form in a JSON string body: itself, a two-character escape, or \u00xx. */
function jsonEscape(byte: number): string {
  const escape = JSON_ESCAPES[byte];
  if (escape) return escape;
  if (byte < 0x20) return `\\u00${byte.toString(16).padStart(2, '0')}`;
  return String.fromCharCode(byte);
}

/** The text of a COPY field [start, end) with its escapes undone. */
function copyText(src: Buffer, start: number, end: number): string {
  const first = src.indexOf(BACKSLASH, start);
  if (first === -1 || first >= end) return src.toString('utf8', start, end);
  const out = Buffer.allocUnsafe(end - start);
  let at = 0;
  for (let i = start; i < end; i++) {
    let b = src[i]!;
    if (b === BACKSLASH && i + 1 < end) b = escaped(src[++i]!);
    out[at++] = b;
  }
  return out.toString('utf8', 0, at);
}
