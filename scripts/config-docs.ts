/**
 * Generates docs/configuration.md from the config schema, so the reference never drifts
 * from the code. `--write` rewrites the page; `--check` exits 1 when it is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { format, resolveConfig } from 'prettier';
import { z } from 'zod';
import { configSchema } from '../src/config/schema';

interface Node {
  type?: string | string[];
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  anyOf?: Node[];
  items?: Node;
  properties?: Record<string, Node>;
  /** A map's values (z.record): documented under `<name>`. */
  additionalProperties?: Node;
  required?: string[];
  minimum?: number;
  maximum?: number;
}

const PAGE = path.join(__dirname, '..', 'docs', 'configuration.md');

function typeOf(node: Node): string {
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (node.enum) return node.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (node.anyOf) return node.anyOf.map(typeOf).join(' or ');
  if (node.type === 'array') return `list of ${node.items ? typeOf(node.items) : 'values'}`;
  if (node.type === 'integer' && node.minimum !== undefined && node.maximum !== undefined) {
    return `integer ${node.minimum}–${node.maximum}`;
  }
  return Array.isArray(node.type) ? node.type.join(' or ') : (node.type ?? 'any');
}

function defaultOf(node: Node, required: boolean): string {
  if (node.default === undefined) return required ? '**required**' : '—';
  if (typeof node.default === 'object' && node.default !== null) return '—';
  return `\`${JSON.stringify(node.default)}\``;
}

function rows(node: Node, at: string, out: string[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const name = `${at}${key}`;
    const isObject = child.type === 'object' || child.items?.type === 'object';
    const required = (node.required ?? []).includes(key) && child.default === undefined;
    if (!isObject) {
      out.push(
        `| \`${name}\` | ${typeOf(child)} | ${defaultOf(child, required)} | ${child.description ?? ''} |`,
      );
    } else {
      out.push(
        `| \`${name}\` | ${child.type === 'array' ? 'list' : 'section'} | ${required ? '**required**' : '—'} | ${child.description ?? ''} |`,
      );
      rows(child.items ?? child, `${name}${child.type === 'array' ? '[].' : '.'}`, out);
      const values = child.additionalProperties;
      if (values && typeof values === 'object' && values.properties)
        rows(values, `${name}.<name>.`, out);
    }
  }
}

export async function renderConfigurationPage(): Promise<string> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Node;
  const table: string[] = [];
  rows(schema, '', table);
  const page = `# Configuration reference

<!-- Generated from src/config/schema.ts by \`npm run docs:config\`; do not edit by hand. -->

One YAML file, validated as a whole before anything runs. Unknown keys are errors (with a
hint at the nearest known key), every problem is reported at once as
\`file: path: problem\`, and the command exits with code 2 without touching anything.
Tables inherit \`defaults\` unless they set their own value. Secrets never go in this file:
database passwords come from the variable named by \`password_env\` or the file named by
\`password_file\`; S3 credentials from the standard AWS chain; a Temporal Cloud API key from
the variable named by \`temporal.api_key_env\`.

| key | type | default | meaning |
| --- | --- | --- | --- |
${table.join('\n')}

## Environment variables

| variable | effect |
| --- | --- |
| \`TEMPORAL_ADDRESS\`, \`TEMPORAL_NAMESPACE\` | override \`temporal.address\` and \`temporal.namespace\` |
| \`TEMPORAL_API_KEY\` (or the one \`temporal.api_key_env\` names) | API key for Temporal Cloud; turns TLS on |
| \`AWS_ACCESS_KEY_ID\`, \`AWS_SECRET_ACCESS_KEY\`, \`AWS_SESSION_TOKEN\`, \`AWS_PROFILE\` | S3 credentials (standard AWS chain) |
| the variable each \`databases[].password_env\` names | that database's password |

## Example

\`\`\`yaml
${readFileSync(path.join(__dirname, '..', 'examples', 'audit-archiver.yaml'), 'utf8').trimEnd()}
\`\`\`
`;
  // Formatted as `prettier --check` expects, so the lint and the drift check agree.
  return format(page, { ...(await resolveConfig(PAGE)), parser: 'markdown' });
}

async function main(): Promise<void> {
  const page = await renderConfigurationPage();
  if (process.argv.includes('--write')) {
    writeFileSync(PAGE, page);
    process.stdout.write(`wrote ${path.relative(process.cwd(), PAGE)}\n`);
  } else {
    let current = '';
    try {
      current = readFileSync(PAGE, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== page) {
      process.stderr.write(
        'docs/configuration.md is stale: run `npm run docs:config` and commit it\n',
      );
      process.exit(1);
    }
  }
}

if (require.main === module) void main();
