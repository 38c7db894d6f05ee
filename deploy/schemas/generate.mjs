#!/usr/bin/env node
// Writes the JSON schemas kubeconform validates deploy/kubernetes against, from pinned
// upstream sources fetched through the Go module proxy (`go mod download`), so that the
// test needs no network: kubeconform's default is to download schemas at run time.
//
//   node deploy/schemas/generate.mjs     (from the project root; needs Go)
//
// Sources (module@version, file), recorded again in deploy/schemas/SOURCES.json with the
// SHA-256 of each file read:
// - Kubernetes built-in kinds: k8s.io/kubernetes@KUBERNETES, api/openapi-spec/swagger.json
//   (the OpenAPI v2 spec the API server itself serves).
// - ServiceMonitor: github.com/prometheus-operator/prometheus-operator@PROMETHEUS_OPERATOR,
//   example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml (the CRD's
//   openAPIV3Schema, what the cluster validates a ServiceMonitor with).
//
// Each schema is standalone (every $ref inlined) and strict (an object with declared
// properties takes no other key), the layout kubeconform expects under -schema-location DIR
// with -strict: DIR/v<version>-standalone-strict/<kind><-group>-<version>.json.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const KUBERNETES = 'v1.37.2';
const PROMETHEUS_OPERATOR = 'v0.85.0';

/** The built-in kinds deploy/kubernetes uses: [group, version, kind]. */
const KINDS = [
  ['', 'v1', 'ConfigMap'],
  ['', 'v1', 'Secret'],
  ['', 'v1', 'Service'],
  ['', 'v1', 'ServiceAccount'],
  ['apps', 'v1', 'Deployment'],
  ['policy', 'v1', 'PodDisruptionBudget'],
  ['networking.k8s.io', 'v1', 'NetworkPolicy'],
];

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, `${KUBERNETES}-standalone-strict`);

/** The folder of a module version in the Go module cache, downloaded through the proxy if needed. */
function moduleDir(module, version) {
  const out = execFileSync('go', ['mod', 'download', '-json', `${module}@${version}`], {
    encoding: 'utf8',
  });
  const info = JSON.parse(out);
  if (info.Error) throw new Error(`${module}@${version}: ${info.Error}`);
  return info.Dir;
}

const sources = [];
function readSource(module, version, file) {
  const text = readFileSync(path.join(moduleDir(module, version), file), 'utf8');
  sources.push({
    module,
    version,
    file,
    sha256: createHash('sha256').update(text).digest('hex'),
  });
  return text;
}

/**
 * A schema made strict: every object with declared properties refuses other keys (unless it
 * says it keeps unknown fields); OpenAPI's int-or-string and nullable become JSON Schema.
 */
function strict(schema) {
  if (Array.isArray(schema)) return schema.map(strict);
  if (schema === null || typeof schema !== 'object') return schema;
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'description') continue; // kubeconform never shows them; they only add bulk
    out[key] = key === 'enum' || key === 'default' || key === 'example' ? value : strict(value);
  }
  if (out.format === 'int-or-string') {
    delete out.type;
    delete out.format;
    out.oneOf = [{ type: 'string' }, { type: 'integer' }];
  }
  if (out.nullable === true && typeof out.type === 'string') {
    out.type = [out.type, 'null'];
    delete out.nullable;
  }
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    out['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.additionalProperties = false;
  }
  return out;
}

const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';
// The grammar of a quantity in its description (and in CRDs that carry one): a signed
// decimal with a binary (Ki..Ei), decimal (n..E) or exponent suffix.
const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** The definition with every $ref inlined; a reference cycle (none in these kinds) is an error. */
function inline(definitions, schema, seen = []) {
  if (Array.isArray(schema)) return schema.map((s) => inline(definitions, s, seen));
  if (schema === null || typeof schema !== 'object') return schema;
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace('#/definitions/', '');
    // A quantity is written as a string (128Mi) or a number (1): both are valid.
    if (name === QUANTITY)
      return { oneOf: [{ type: 'string', pattern: QUANTITY_PATTERN }, { type: 'number' }] };
    if (seen.includes(name)) throw new Error(`reference cycle: ${[...seen, name].join(' -> ')}`);
    const target = definitions[name];
    if (!target) throw new Error(`no definition ${name}`);
    return inline(definitions, target, [...seen, name]);
  }
  const out = {};
  for (const [key, value] of Object.entries(schema)) out[key] = inline(definitions, value, seen);
  return out;
}

/** The file name kubeconform looks for: kind, then -group (first label) and -version. */
function fileName(group, version, kind) {
  const suffix = group === '' ? `-${version}` : `-${group.split('.')[0]}-${version}`;
  return `${kind.toLowerCase()}${suffix}.json`;
}

/** Pins apiVersion and kind, so a schema can only pass the kind it is for. */
function pinKind(schema, group, version, kind) {
  const apiVersion = group === '' ? version : `${group}/${version}`;
  schema.properties.apiVersion = { ...schema.properties.apiVersion, enum: [apiVersion] };
  schema.properties.kind = { ...schema.properties.kind, enum: [kind] };
  schema.required = [...new Set([...(schema.required ?? []), 'apiVersion', 'kind'])];
  return schema;
}

const written = [];
function write(group, version, kind, schema) {
  const file = path.join(outDir, fileName(group, version, kind));
  writeFileSync(file, `${JSON.stringify(pinKind(schema, group, version, kind), null, 2)}\n`);
  written.push(file);
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const swagger = JSON.parse(
  readSource('k8s.io/kubernetes', KUBERNETES, 'api/openapi-spec/swagger.json'),
);
const definitions = swagger.definitions;
const byKind = new Map();
for (const [name, definition] of Object.entries(definitions)) {
  for (const gvk of definition['x-kubernetes-group-version-kind'] ?? []) {
    byKind.set(`${gvk.group}/${gvk.version}/${gvk.kind}`, name);
  }
}
for (const [group, version, kind] of KINDS) {
  const name = byKind.get(`${group}/${version}/${kind}`);
  if (!name) throw new Error(`no ${group}/${version} ${kind} in the Kubernetes ${KUBERNETES} spec`);
  write(group, version, kind, strict(inline(definitions, definitions[name])));
}

const objectMeta = strict(
  inline(definitions, { $ref: '#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' }),
);
const crdText = readSource(
  'github.com/prometheus-operator/prometheus-operator',
  PROMETHEUS_OPERATOR,
  'example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml',
);
for (const document of parseAllDocuments(crdText)) {
  const crd = document.toJS();
  if (crd?.kind !== 'CustomResourceDefinition') continue;
  for (const v of crd.spec.versions) {
    const schema = strict(v.schema.openAPIV3Schema);
    // The CRD leaves metadata open (the API server checks it); check it as Kubernetes does.
    schema.properties.metadata = objectMeta;
    write(crd.spec.group, v.name, crd.spec.names.kind, schema);
  }
}

writeFileSync(
  path.join(here, 'SOURCES.json'),
  `${JSON.stringify({ generator: 'deploy/schemas/generate.mjs', sources, schemas: written.map((f) => path.relative(here, f)) }, null, 2)}\n`,
);
execFileSync(
  'npx',
  ['prettier', '--log-level', 'warn', '--write', outDir, path.join(here, 'SOURCES.json')],
  {
    stdio: 'inherit',
  },
);
process.stdout.write(
  `wrote ${written.length} schemas to ${path.relative(process.cwd(), outDir)}\n`,
);
