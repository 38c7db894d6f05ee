import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../shared/errors';
import { configSchema, type Config } from './schema';

/** The environment variables the archiver reads; passed in so nothing else reads process.env. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads, parses and validates a configuration file, then applies the standard Temporal
 * environment overrides. Every problem is reported at once, one line each, naming the file
 * and the path: `config.yaml: databases[0].tables[2]: timestamp_column is required`.
 */
export function loadConfig(file: string, env: Env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : String(err);
    throw new ConfigError(`${file}: ${reason}`, { file });
  }
  return parseConfig(text, file, env);
}

/** Validates configuration text; `file` only names the source in messages. */
export function parseConfig(text: string, file: string, env: Env): Config {
  const name = file;
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  // Only the first syntax error: the parser's later ones are mostly echoes of it (one tab
  // used as indentation gives five).
  const syntax = doc.errors[0];
  if (syntax) {
    const at = syntax.linePos?.[0];
    const where = at ? `${name}:${at.line}:${at.col}` : name;
    const message = firstLine(syntax.message)
      .replace(/ at line \d+, column \d+:?$/, '')
      .replace(/^Source contains multiple documents.*/, 'the file holds more than one document');
    throw new ConfigError(`${where}: invalid YAML: ${message}`, { file });
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // An alias without its anchor, or so many aliases that expanding them is an attack.
    throw new ConfigError(`${name}: invalid YAML: ${firstLine(String((err as Error).message))}`, {
      file,
    });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${name}: expected a mapping of settings (version, s3, databases, ...)`, {
      file,
    });
  }
  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `${name}: ${describeIssue(issue)}`);
    throw new ConfigError(lines.join('\n'), { file });
  }
  return withEnvOverrides(normalise(parsed.data), env);
}

function normalise(config: Config): Config {
  const prefix = config.s3.prefix;
  return {
    ...config,
    s3: { ...config.s3, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` },
  };
}

function withEnvOverrides(config: Config, env: Env): Config {
  return {
    ...config,
    temporal: {
      ...config.temporal,
      address: nonEmpty(env.TEMPORAL_ADDRESS) ?? config.temporal.address,
      namespace: nonEmpty(env.TEMPORAL_NAMESPACE) ?? config.temporal.namespace,
    },
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** `databases[0].tables[2]`, the way people write a path into a YAML document. */
export function formatPath(segments: readonly PropertyKey[]): string {
  return segments
    .map((s, i) => (typeof s === 'number' ? `[${s}]` : `${i === 0 ? '' : '.'}${String(s)}`))
    .join('');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const at = (segments: readonly PropertyKey[], text: string) =>
    segments.length === 0 ? text : `${formatPath(segments)}: ${text}`;
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) {
        const key = issue.path.at(-1);
        return at(issue.path.slice(0, -1), `${String(key)} is required`);
      }
      return at(issue.path, `expected ${issue.expected}, got ${describeValue(issue.input)}`);
    }
    case 'unrecognized_keys':
      return issue.keys
        .map((key) => at(issue.path, `unknown key "${key}"${hint(key, issue.path)}`))
        .join('; ');
    case 'invalid_value':
      if (issue.input === undefined) {
        // A missing field whose schema accepts fixed values (`version`).
        return at(issue.path.slice(0, -1), `${String(issue.path.at(-1))} is required`);
      }
      return at(
        issue.path,
        `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(issue.input)}`,
      );
    default:
      return at(issue.path, lowerFirst(issue.message));
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

/** ` (did you mean "bucket"?)` when a known key at that path is one or two edits away. */
function hint(key: string, at: readonly PropertyKey[]): string {
  const known = knownKeys(at);
  const best = known
    .map((candidate) => ({ candidate, distance: editDistance(key, candidate) }))
    .sort((a, b) => a.distance - b.distance)[0];
  if (best && best.distance <= Math.max(2, Math.floor(key.length / 3))) {
    return ` (did you mean "${best.candidate}"?)`;
  }
  return known.length > 0 ? ` (expected one of: ${known.join(', ')})` : '';
}

type JsonSchemaNode = {
  properties?: Record<string, JsonSchemaNode>;
  /** The values of a map (`z.record`): `schedules.<name>`, `notifications.channels.<name>`. */
  additionalProperties?: JsonSchemaNode | boolean;
  items?: JsonSchemaNode;
  /** The members of a union (a notification channel is one of several types). */
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
};
let jsonSchema: JsonSchemaNode | undefined;

/** A node and, for a union, each of its members (the keys of any member are known keys). */
function alternatives(node: JsonSchemaNode): JsonSchemaNode[] {
  const members = [...(node.anyOf ?? []), ...(node.oneOf ?? [])];
  return [node, ...members.flatMap(alternatives)];
}

function child(node: JsonSchemaNode, segment: PropertyKey): JsonSchemaNode[] {
  if (typeof segment === 'number') return node.items ? [node.items] : [];
  const named = node.properties?.[String(segment)];
  if (named) return [named];
  return typeof node.additionalProperties === 'object' ? [node.additionalProperties] : [];
}

function knownKeys(at: readonly PropertyKey[]): string[] {
  jsonSchema ??= z.toJSONSchema(configSchema, {
    io: 'input',
    unrepresentable: 'any',
  }) as JsonSchemaNode;
  let nodes = [jsonSchema];
  for (const segment of at) {
    nodes = nodes.flatMap(alternatives).flatMap((node) => child(node, segment));
  }
  const keys = nodes.flatMap(alternatives).flatMap((node) => Object.keys(node.properties ?? {}));
  return [...new Set(keys)];
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}
