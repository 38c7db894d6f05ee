import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig, type Config } from '../../src/config';
import { configSchema } from '../../src/config/schema';
import { PROJECT_DIR } from '../helpers/stack';

// The deployment files checked with the tools that judge them for real, without a cluster or
// a Docker engine: kubeconform (strict, against the schemas in deploy/schemas, generated
// from Kubernetes' and the Prometheus Operator's own sources) for deploy/kubernetes;
// compose-go (what `docker compose config` runs) for docker-compose.yml; BuildKit's
// Dockerfile frontend and linter (what `docker build --check` runs) for the Dockerfile.
// Each tool is also shown to refuse a broken file, so a pass means something.

const KUBERNETES_DIR = path.join(PROJECT_DIR, 'deploy', 'kubernetes');
const SCHEMAS_DIR = path.join(PROJECT_DIR, 'deploy', 'schemas');
const KUBERNETES_VERSION = '1.37.2';
const DEPLOY_CHECK_DIR = path.join(PROJECT_DIR, 'temporal', 'go', 'deploy-check');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: PROJECT_DIR, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number')
          return reject(new Error(err.message, { cause: err }));
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
  });
}

function libSh(expression: string): string {
  return execFileSync('bash', ['-c', `source temporal/lib.sh && ${expression}`], {
    cwd: PROJECT_DIR,
    encoding: 'utf8',
  }).trim();
}

/** kubeconform built from its pinned module (temporal/go/kubeconform), as the stack builds it. */
function kubeconformPath(): string {
  const binary = libSh('binary_path kubeconform');
  if (!existsSync(binary)) {
    execFileSync('bash', ['temporal/build-binaries.sh', 'kubeconform'], {
      cwd: PROJECT_DIR,
      stdio: 'inherit',
    });
  }
  return binary;
}

/**
 * deploy-check (temporal/go/deploy-check) built once per machine into the stack's cache,
 * keyed by a hash of its go.mod, go.sum and sources, so a change builds anew.
 */
function deployCheckPath(): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(DEPLOY_CHECK_DIR).sort()) {
    if (name === 'go.mod' || name === 'go.sum' || name.endsWith('.go'))
      hash.update(name).update(readFileSync(path.join(DEPLOY_CHECK_DIR, name)));
  }
  const dir = path.join(
    libSh('echo "$CACHE_DIR"'),
    'bin',
    `deploy-check-${hash.digest('hex').slice(0, 12)}`,
  );
  const binary = path.join(dir, 'deploy-check');
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true });
    const partial = `${binary}.${process.pid}.partial`;
    execFileSync('go', ['build', '-mod=readonly', '-trimpath', '-o', partial, '.'], {
      cwd: DEPLOY_CHECK_DIR,
      env: { ...process.env, CGO_ENABLED: '0' },
      stdio: 'inherit',
    });
    renameSync(partial, binary);
  }
  return binary;
}

interface KubeconformResult {
  resources: { filename: string; kind: string; name: string; status: string; msg: string }[];
  summary: { valid: number; invalid: number; errors: number; skipped: number };
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  [key: string]: unknown;
}

describe('deployment files (kubeconform, compose-go, BuildKit)', function () {
  // The first run on a machine builds kubeconform and deploy-check from their modules.
  this.timeout(900_000);
  let kubeconform: string;
  let deployCheck: string;
  let scratch: string;

  before(() => {
    kubeconform = kubeconformPath();
    deployCheck = deployCheckPath();
    scratch = mkdtempSync(path.join(tmpdir(), 'aa-deploy-'));
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const validate = async (files: string[]): Promise<Run & { result: KubeconformResult }> => {
    const out = await run(kubeconform, [
      '-strict',
      '-summary',
      '-verbose',
      '-output',
      'json',
      '-kubernetes-version',
      KUBERNETES_VERSION,
      '-schema-location',
      SCHEMAS_DIR,
      ...files,
    ]);
    return { ...out, result: JSON.parse(out.stdout) as KubeconformResult };
  };

  const kustomization = () =>
    parse(readFileSync(path.join(KUBERNETES_DIR, 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
    };
  const manifests = (): Manifest[] =>
    kustomization().resources.flatMap((file) =>
      parseAllDocuments(readFileSync(path.join(KUBERNETES_DIR, file), 'utf8')).map(
        (d) => d.toJS() as Manifest,
      ),
    );
  const manifest = (kind: string): Manifest => {
    const found = manifests().filter((m) => m.kind === kind);
    assert.equal(found.length, 1, `one ${kind} in deploy/kubernetes`);
    return found[0]!;
  };

  describe('Kubernetes manifests', () => {
    it('lists every manifest of deploy/kubernetes in kustomization.yaml, and only those', () => {
      const files = readdirSync(KUBERNETES_DIR)
        .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
        .sort();
      assert.deepEqual([...kustomization().resources].sort(), files);
    });

    it('validates every manifest strictly against the Kubernetes 1.37 and ServiceMonitor schemas, none skipped', async () => {
      const files = kustomization().resources.map((f) => path.join(KUBERNETES_DIR, f));
      const { code, result, stderr } = await validate(files);
      const problems = result.resources
        .filter((r) => r.status !== 'statusValid')
        .map((r) => `${r.kind} ${r.name}: ${r.status} ${r.msg}`);
      assert.deepEqual(problems, [], stderr);
      assert.equal(code, 0);
      assert.deepEqual(result.summary, {
        valid: manifests().length,
        invalid: 0,
        errors: 0,
        skipped: 0,
      });
      assert.deepEqual(
        new Set(result.resources.map((r) => r.kind)),
        new Set(manifests().map((m) => m.kind)),
      );
    });

    it('refuses a misspelt container field, a quantity that is none and an unknown ServiceMonitor key', async () => {
      const deployment = readFileSync(path.join(KUBERNETES_DIR, 'deployment.yaml'), 'utf8');
      const monitor = readFileSync(path.join(KUBERNETES_DIR, 'servicemonitor.yaml'), 'utf8');
      const cases = [
        [
          'misspelt.yaml',
          deployment.replace('imagePullPolicy:', 'imagePulPolicy:'),
          "'imagePulPolicy' not allowed",
        ],
        [
          'quantity.yaml',
          deployment.replace(/memory: \S+/, 'memory: lots'),
          "'lots' does not match pattern",
        ],
        [
          'monitor.yaml',
          monitor.replace('interval: 30s', 'intervall: 30s'),
          "'intervall' not allowed",
        ],
      ] as const;
      for (const [name, text, message] of cases) {
        const file = path.join(scratch, name);
        writeFileSync(file, text);
        const { code, result } = await validate([file]);
        assert.equal(code, 1, name);
        assert.equal(result.summary.invalid, 1, name);
        assert.ok(
          result.resources[0]!.msg.includes(message),
          `${name}: ${result.resources[0]!.msg}`,
        );
      }
    });

    it('reports a kind it has no schema for as an error, never as valid', async () => {
      const file = path.join(scratch, 'unknown.yaml');
      writeFileSync(file, 'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n');
      const { code, result } = await validate([file]);
      assert.equal(code, 1);
      assert.equal(result.summary.errors, 1);
      assert.equal(result.summary.valid, 0);
    });

    it('configures the worker as the product expects: http on 0.0.0.0:9464, probes on /healthz, grace above shutdown_grace_seconds', () => {
      const configMap = manifest('ConfigMap') as Manifest & { data: Record<string, string> };
      const config = parseConfig(configMap.data['config.yaml']!, 'configmap.yaml', {});
      assert.equal(config.worker.http_address, '0.0.0.0:9464');
      const port = Number(config.worker.http_address.split(':')[1]);

      type Probe = { httpGet: { path: string; port: string | number } };
      type Container = {
        args: string[];
        ports: { name: string; containerPort: number }[];
        env: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
        startupProbe: Probe;
        readinessProbe: Probe;
        livenessProbe: Probe;
        securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean };
        volumeMounts: { name: string; mountPath: string }[];
      };
      const deployment = manifest('Deployment') as Manifest & {
        spec: {
          template: {
            spec: {
              terminationGracePeriodSeconds: number;
              securityContext: { runAsNonRoot: boolean };
              containers: Container[];
              volumes: {
                name: string;
                secret?: { secretName: string; items: { key: string; path: string }[] };
              }[];
            };
          };
        };
      };
      const pod = deployment.spec.template.spec;
      const worker = pod.containers[0]!;
      assert.deepEqual(worker.args, ['worker', '--config', '/etc/audit-archiver/config.yaml']);
      const http = worker.ports.find((p) => p.name === 'http');
      assert.equal(http?.containerPort, port);
      for (const probe of [worker.startupProbe, worker.readinessProbe, worker.livenessProbe]) {
        assert.equal(probe.httpGet.path, '/healthz');
        assert.equal(probe.httpGet.port, 'http');
      }
      assert.ok(pod.terminationGracePeriodSeconds > config.worker.shutdown_grace_seconds);
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(worker.securityContext.readOnlyRootFilesystem, true);
      assert.equal(worker.securityContext.allowPrivilegeEscalation, false);

      // The database password file the config names is the key the Secret mounts there.
      const secret = manifest('Secret') as Manifest & { stringData: Record<string, string> };
      const secretsMount = worker.volumeMounts.find((m) => m.name === 'secrets')!;
      const items = pod.volumes.find((v) => v.name === 'secrets')!.secret!.items;
      for (const db of config.databases) {
        assert.ok(db.password_file, `${db.name} reads its password from a file`);
        const item = items.find(
          (i) => path.join(secretsMount.mountPath, i.path) === db.password_file,
        );
        assert.ok(item, `${db.password_file} is mounted from the Secret`);
        assert.ok(item.key in secret.stringData);
      }
      for (const e of worker.env.filter((e) => e.valueFrom?.secretKeyRef)) {
        assert.equal(e.valueFrom!.secretKeyRef!.name, secret.metadata.name);
        assert.ok(e.valueFrom!.secretKeyRef!.key in secret.stringData, e.name);
      }

      // Prometheus scrapes /metrics through the Service's port of that name.
      const service = manifest('Service') as Manifest & {
        spec: { ports: { name: string; port: number; targetPort: string }[] };
      };
      assert.deepEqual(
        service.spec.ports.map((p) => [p.name, p.port, p.targetPort]),
        [['http', port, 'http']],
      );
      const monitor = manifest('ServiceMonitor') as Manifest & {
        spec: { endpoints: { port: string; path: string }[] };
      };
      assert.deepEqual(
        monitor.spec.endpoints.map((e) => [e.port, e.path]),
        [['http', '/metrics']],
      );
    });
  });

  describe('Dockerfile', () => {
    interface Parsed {
      args: { name: string; default: string | null }[];
      stages: { name: string; baseName: string; commands: { name: string; original: string }[] }[];
    }

    it('parses and passes every BuildKit lint rule (docker build --check)', async () => {
      const { code, stdout, stderr } = await run(deployCheck, ['dockerfile', 'Dockerfile']);
      assert.equal(code, 0, stderr);
      const parsed = JSON.parse(stdout) as Parsed;
      const nodeImage = parsed.args.find((a) => a.name === 'NODE_IMAGE');
      assert.match(nodeImage?.default ?? '', /^node:22-bookworm-slim$/);
      const final = parsed.stages.at(-1)!;
      const commands = (name: string) =>
        final.commands.filter((c) => c.name === name).map((c) => c.original);

      // The port the image exposes and checks is the product's default http_address port.
      const defaultPort = configSchema
        .parse({
          version: '2.0',
          s3: { bucket: 'audit-archive' },
          databases: [
            { name: 'd', tables: [{ name: 't', timestamp_column: 'c', primary_key: 'id' }] },
          ],
        })
        .worker.http_address.split(':')[1];
      assert.deepEqual(commands('EXPOSE'), [`EXPOSE ${defaultPort}`]);
      const [healthcheck] = commands('HEALTHCHECK');
      assert.ok(healthcheck?.includes(`127.0.0.1:${defaultPort}/healthz`), healthcheck);
      assert.deepEqual(commands('USER'), ['USER node']);
    });

    it('fails a Dockerfile that breaks a lint rule', async () => {
      const file = path.join(scratch, 'Dockerfile.bad');
      writeFileSync(file, 'FROM node:22-bookworm-slim as Build\nCMD node bin/audit-archiver.js\n');
      const { code, stderr } = await run(deployCheck, ['dockerfile', file]);
      assert.equal(code, 1);
      assert.match(stderr, /StageNameCasing/);
      assert.match(stderr, /JSONArgsRecommended/);
    });
  });

  describe('docker-compose.yml', () => {
    interface Service {
      image?: string;
      build?: { context: string; args?: Record<string, string> };
      environment?: Record<string, string>;
      ports?: { target: number; published: string; host_ip: string }[];
      healthcheck?: { test: string[] };
      depends_on?: Record<string, { condition: string }>;
      stop_grace_period?: string;
      configs?: { source: string; target: string }[];
    }
    interface Project {
      services: Record<string, Service>;
      configs: Record<string, { content: string }>;
    }
    let project: Project;
    let config: Config;

    before(async () => {
      const { code, stdout, stderr } = await run(deployCheck, ['compose', 'docker-compose.yml']);
      assert.equal(code, 0, stderr);
      project = JSON.parse(stdout) as Project;
      const worker = project.services.worker!;
      const mounted = worker.configs!.find((c) => c.target === '/etc/audit-archiver/config.yaml')!;
      config = parseConfig(project.configs[mounted.source]!.content, 'docker-compose.yml', {});
    });

    it('loads under the Compose specification, with a health check on every long-running service', () => {
      for (const name of ['postgres', 'temporal', 'minio', 'mailpit', 'worker']) {
        assert.ok(project.services[name]?.healthcheck?.test.length, `${name} has a health check`);
      }
    });

    it("runs the worker with the product's config: /healthz on the published http_address, services it names, secrets from its environment", () => {
      const worker = project.services.worker!;
      assert.equal(config.worker.http_address, '0.0.0.0:9464');
      const port = Number(config.worker.http_address.split(':')[1]);
      assert.deepEqual(
        worker.ports?.map((p) => p.target),
        [port],
      );
      assert.ok(worker.healthcheck!.test.join(' ').includes(`127.0.0.1:${port}/healthz`));
      assert.equal(worker.build?.args?.NODE_IMAGE, 'node:22-bookworm-slim');

      const hostOf = (address: string) => address.replace(/^https?:\/\//, '').split(':')[0]!;
      const named = [
        hostOf(config.temporal.address),
        hostOf(config.s3.endpoint!),
        ...config.databases.map((d) => d.host),
        ...Object.values(config.notifications.channels).flatMap((c) =>
          c.smtp ? [c.smtp.host] : [],
        ),
      ];
      for (const host of named) {
        assert.ok(project.services[host], `${host} is a service of the compose file`);
        assert.ok(worker.depends_on?.[host], `the worker waits for ${host}`);
      }
      for (const db of config.databases) {
        assert.ok(
          db.password_env && worker.environment?.[db.password_env],
          `${db.name}'s password`,
        );
      }
      // Compose gives a stopping container this long before SIGKILL (Go duration text).
      const grace = Number(/^(\d+)s$/.exec(worker.stop_grace_period ?? '')?.[1]);
      assert.ok(grace > config.worker.shutdown_grace_seconds);
    });

    it('refuses a compose file with a misspelt service key', async () => {
      const file = path.join(scratch, 'compose.yml');
      writeFileSync(
        file,
        readFileSync(path.join(PROJECT_DIR, 'docker-compose.yml'), 'utf8').replace(
          'stop_grace_period:',
          'stop_grace_periode:',
        ),
      );
      const { code, stderr } = await run(deployCheck, ['compose', file]);
      assert.equal(code, 1);
      assert.match(stderr, /stop_grace_periode/);
    });
  });
});
