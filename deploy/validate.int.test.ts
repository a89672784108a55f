// deploy/ checked by real tools and against the code: kubeconform (strict, offline schemas)
// on the Kubernetes manifests, `docker-compose config` on the Compose file, both through
// deploy/validate.sh; then what the tools cannot see: every QUIRE_* variable the manifests
// and the Compose file set is one a Quire app knows, each app's configuration from them
// loads through that app's own loader (publish and consume with access control on, the
// migration with the bootstrap admin token), and the probes, Services, HPA, PDBs and ports
// point at what exists. The validators are installed by scripts/deploy-tools.sh; a failed install
// fails this file (no skipping).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadConfig as loadConsumeConfig } from '@quire/consume-service';
import { loadConfig as loadPublishConfig } from '@quire/publish-service';
import { knownVariables, loadMigrateConfig, mintTokenString } from '@quire/service-kit';
import { APPS } from '../scripts/build.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const K8S = join(ROOT, 'deploy/k8s');
const COMPOSE = join(ROOT, 'deploy/compose/compose.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'quire-deploy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number | null;
  out: string;
}

function run(cmd: string, args: string[], env: Record<string, string | undefined> = process.env): Promise<Run> {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (out += b.toString('utf8')));
  return new Promise((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => res({ code, out }));
  });
}

const validate = (args: string[] = []): Promise<Run> => run('bash', ['deploy/validate.sh', ...args]);

// ── the manifests, as data ───────────────────────────────────────────────────────────
type Obj = Record<string, unknown>;
interface Resource {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Obj;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: Obj; secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: EnvVar[];
  envFrom?: Array<{ secretRef?: { name: string }; configMapRef?: { name: string } }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  containers: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  volumes?: Array<{ name: string; configMap?: { name: string } }>;
}
interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: PodSpec;
}

const resources: Resource[] = readdirSync(K8S)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]?.message}`);
      return { file, ...(d.toJS() as Omit<Resource, 'file'>) };
    }),
  );
const ofKind = (kind: string): Resource[] => resources.filter((r) => r.kind === kind);
const named = (kind: string, name: string): Resource => {
  const r = resources.find((x) => x.kind === kind && x.metadata.name === name);
  if (r === undefined) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return r;
};
const template = (r: Resource): PodTemplate => (r.kind === 'Job' ? (r.spec?.['template'] as PodTemplate) : (r.spec?.['template'] as PodTemplate));
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Which Quire app a container runs, from its entry point; undefined for the UI. */
function appOf(args: readonly string[] | undefined): 'publish' | 'consume' | 'migrate' | undefined {
  const entry = args?.join(' ') ?? '';
  if (entry.startsWith('apps/publish-service/dist/main.js')) return 'publish';
  if (entry.startsWith('apps/consume-service/dist/main.js')) return 'consume';
  if (entry === 'apps/cli/dist/main.js migrate') return 'migrate';
  return undefined;
}

/** The app's configuration loaded through its own loader: throws a ConfigError naming what is wrong. */
function loadFor(app: 'publish' | 'consume' | 'migrate', env: Record<string, string>): { httpPort?: number; grpcPort?: number; auth?: { enabled: boolean }; bootstrapAdminToken?: string; hintToken?: string; publishHintEndpoints?: string[]; publishHintToken?: string } {
  if (app === 'publish') return loadPublishConfig(env);
  if (app === 'consume') return loadConsumeConfig(env);
  return loadMigrateConfig(env);
}

beforeAll(async () => {
  const r = await run('bash', ['scripts/deploy-tools.sh']);
  if (r.code !== 0) throw new Error(`the deploy/ validators could not be installed (scripts/deploy-tools.sh exited ${r.code}):\n${r.out}`);
}, 600_000);

describe('deploy/k8s', () => {
  it('is valid for kubeconform, strictly, every resource against its Kubernetes schema', async () => {
    const r = await validate(['--k8s', K8S]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`Summary: ${resources.length} resources found in ${new Set(resources.map((x) => x.file)).size} files - Valid: ${resources.length}, Invalid: 0, Errors: 0, Skipped: 0`);
  });

  it('kubeconform refuses a misspelled field, a wrong type and a kind without a schema', async () => {
    const deployment = named('Deployment', 'quire-publish');
    const pod = structuredClone(template(deployment));
    const c = pod.spec.containers[0] as Container & { readinesProbe?: Probe };
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    const { file: _file, ...doc } = deployment;
    const broken = [
      { ...doc, metadata: { ...doc.metadata, name: 'typo' }, spec: { ...doc.spec, template: pod } },
      { ...doc, metadata: { ...doc.metadata, name: 'wrong-type' }, spec: { ...doc.spec, replicas: 'two' } },
      { ...doc, kind: 'Deploymnet', metadata: { ...doc.metadata, name: 'no-schema' } },
    ];
    const dir = join(tmp, 'broken-k8s');
    rmSync(dir, { recursive: true, force: true });
    await run('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'broken.yaml'), broken.map((d) => stringify(d)).join('---\n'));
    const r = await validate(['--k8s', dir]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/Deployment typo is invalid: .*readinesProbe/);
    expect(r.out).toMatch(/Deployment wrong-type is invalid: .*\/spec\/replicas/);
    expect(r.out).toMatch(/Deploymnet no-schema failed validation: could not find schema for Deploymnet/);
    expect(r.out).toContain('Valid: 0, Invalid: 2, Errors: 1');
  });

  it('sets only variables a Quire app knows, and each app loads its configuration from them', () => {
    const known = new Set(knownVariables());
    const configMap = named('ConfigMap', 'quire-config');
    const configFile = join(tmp, 'quire.yaml');
    writeFileSync(configFile, configMap.data?.['quire.yaml'] ?? '');
    for (const key of Object.keys(parse(configMap.data?.['quire.yaml'] ?? '') as Obj)) expect(known, `ConfigMap quire.yaml key ${key}`).toContain(key);
    for (const secret of ofKind('Secret')) for (const key of Object.keys(secret.stringData ?? {})) expect(known, `Secret ${secret.metadata.name} key ${key}`).toContain(key);

    const workloads = [...ofKind('Deployment'), ...ofKind('Job')];
    const apps = new Set<string>();
    for (const w of workloads) {
      for (const c of template(w).spec.containers) {
        const app = appOf(c.args);
        const env: Record<string, string> = {};
        for (const from of c.envFrom ?? []) {
          const source = from.secretRef ? named('Secret', from.secretRef.name).stringData : named('ConfigMap', from.configMapRef?.name ?? '').data;
          Object.assign(env, source);
        }
        for (const e of c.env ?? []) {
          if (e.name.startsWith('QUIRE_')) expect(known, `${w.kind} ${w.metadata.name}: ${e.name}`).toContain(e.name);
          const ref = e.valueFrom?.secretKeyRef;
          if (ref !== undefined) {
            const value = named('Secret', ref.name).stringData?.[ref.key];
            expect(value, `${w.metadata.name}: Secret ${ref.name} has ${ref.key}`).toBeDefined();
            env[e.name] = value ?? '';
          } else {
            env[e.name] = e.value ?? `${w.metadata.name}-7d9f8-abcde`; // a fieldRef: the pod's name
          }
        }
        if (app === undefined) {
          expect(Object.keys(env).filter((k) => k.startsWith('QUIRE_')), `${w.metadata.name} is no Quire app`).toEqual([]);
          continue;
        }
        apps.add(app);
        // The file is mounted where QUIRE_CONFIG_FILE says, from the quire-config ConfigMap.
        const mount = c.volumeMounts?.find((m) => env['QUIRE_CONFIG_FILE']?.startsWith(`${m.mountPath}/`));
        expect(mount, `${w.metadata.name} mounts its QUIRE_CONFIG_FILE`).toBeDefined();
        expect(template(w).spec.volumes?.find((v) => v.name === mount?.name)?.configMap?.name).toBe('quire-config');
        // The Secret's placeholders are no tokens: the Job (and the consume pods, for the change-hint
        // token) stop with exit 2 naming the variable until the real Secret exists.
        for (const variable of ['QUIRE_BOOTSTRAP_ADMIN_TOKEN', 'QUIRE_BOOTSTRAP_HINT_TOKEN', 'QUIRE_PUBLISH_HINT_TOKEN']) {
          if (env[variable] === undefined) continue;
          expect(() => loadFor(app, { ...env, QUIRE_CONFIG_FILE: configFile })).toThrow(new RegExp(`${variable}: is not a Quire token`));
          env[variable] = mintTokenString(); // as `kubectl create secret … $(quire tokens mint)` would
        }
        const config = loadFor(app, { ...env, QUIRE_CONFIG_FILE: configFile });
        if (app === 'migrate') {
          expect(config.bootstrapAdminToken, `${w.metadata.name} registers the bootstrap admin token`).toBe(env['QUIRE_BOOTSTRAP_ADMIN_TOKEN']);
          expect(config.hintToken, `${w.metadata.name} registers the change-hint token`).toBe(env['QUIRE_BOOTSTRAP_HINT_TOKEN']);
        } else expect(config.auth?.enabled, `${w.metadata.name} runs with access control on`).toBe(true);
        if (app === 'consume') {
          // Change hints (ADR 0009): every publish replica through the headless Service, with the token.
          expect(config.publishHintEndpoints).toEqual(['quire-publish-replicas.quire.svc.cluster.local:7444']);
          expect(named('Service', 'quire-publish-replicas').spec?.['clusterIP']).toBe('None');
          expect(config.publishHintToken).toBe(env['QUIRE_PUBLISH_HINT_TOKEN']);
        }
        // The ports the app listens on are the ones the container declares (probes and Services use the names).
        const port = (name: string): number | undefined => c.ports?.find((p) => p.name === name)?.containerPort;
        if (config.httpPort !== undefined) expect(port('http'), `${w.metadata.name} http port`).toBe(config.httpPort);
        if (config.grpcPort !== undefined) expect(port('grpc'), `${w.metadata.name} grpc port`).toBe(config.grpcPort);
        // The entry is a bundle `pnpm build` writes (in the image's build stage), from a source that exists.
        const built = /^apps\/([^/]+)\/dist\/main\.js$/.exec(c.args?.[0] ?? '')?.[1];
        expect(APPS, `${w.metadata.name}: ${c.args?.[0]} is built by pnpm build`).toContain(built);
        expect(existsSync(join(ROOT, 'apps', built ?? '', 'src/main.ts')), `${w.metadata.name} runs a bundle of apps/${built}/src/main.ts`).toBe(true);
      }
    }
    expect([...apps].sort()).toEqual(['consume', 'migrate', 'publish']);
  });

  it('wires probes, Services, the consume HPA and the PDBs to the Deployments; publish and consume scale apart', () => {
    const deployments = ofKind('Deployment');
    const namespace = named('Namespace', 'quire');
    for (const r of resources) if (r !== namespace) expect(r.metadata.namespace, `${r.kind} ${r.metadata.name}`).toBe('quire');

    const serverImages = new Set<string>();
    for (const d of deployments) {
      const pod = template(d);
      expect(matches(d.spec?.['selector'] ? ((d.spec['selector'] as Obj)['matchLabels'] as Record<string, string>) : {}, pod.metadata.labels)).toBe(true);
      expect(pod.spec.securityContext?.runAsNonRoot, `${d.metadata.name} runs as non-root`).toBe(true);
      for (const c of pod.spec.containers) {
        const ports = new Set((c.ports ?? []).map((p) => p.name));
        for (const probe of [c.readinessProbe, c.livenessProbe]) {
          expect(probe?.httpGet, `${d.metadata.name} has HTTP readiness and liveness probes`).toBeDefined();
          expect(ports, `${d.metadata.name} probe port`).toContain(probe?.httpGet?.port);
        }
        if (appOf(c.args) !== undefined) {
          serverImages.add(c.image);
          expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
          expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
        }
      }
      // A Service and a PodDisruptionBudget for every Deployment.
      const selects = (r: Resource): boolean => {
        const sel = r.kind === 'Service' ? (r.spec?.['selector'] as Record<string, string>) : ((r.spec?.['selector'] as Obj)['matchLabels'] as Record<string, string>);
        return matches(sel, pod.metadata.labels);
      };
      expect(ofKind('Service').filter(selects).length, `Services of ${d.metadata.name}`).toBeGreaterThan(0);
      expect(ofKind('PodDisruptionBudget').filter(selects).length, `PDBs of ${d.metadata.name}`).toBe(1);
      for (const svc of ofKind('Service').filter(selects)) {
        for (const p of svc.spec?.['ports'] as Array<{ targetPort: string }>) {
          expect(pod.spec.containers.flatMap((c) => (c.ports ?? []).map((x) => x.name)), `Service ${svc.metadata.name} targetPort`).toContain(p.targetPort);
        }
      }
    }
    // Every Service and PDB selects some Deployment.
    for (const r of [...ofKind('Service'), ...ofKind('PodDisruptionBudget')]) {
      const sel = r.kind === 'Service' ? (r.spec?.['selector'] as Record<string, string>) : ((r.spec?.['selector'] as Obj)['matchLabels'] as Record<string, string>);
      expect(deployments.some((d) => matches(sel, template(d).metadata.labels)), `${r.kind} ${r.metadata.name} selects a Deployment`).toBe(true);
    }
    // One image for publish, consume and the migration job.
    expect(serverImages.size).toBe(1);
    expect(template(named('Job', 'quire-migrate')).spec.containers[0]?.image).toBe([...serverImages][0]);
    // Consume has the autoscaler, publish has none: they scale apart.
    const hpas = ofKind('HorizontalPodAutoscaler');
    expect(hpas.map((h) => (h.spec?.['scaleTargetRef'] as { kind: string; name: string }).name)).toEqual(['quire-consume']);
    const hpa = hpas[0]?.spec as { minReplicas: number; maxReplicas: number };
    expect(hpa.minReplicas).toBeLessThan(hpa.maxReplicas);
    expect(named('Deployment', 'quire-consume').spec?.['replicas']).toBe(hpa.minReplicas);
  });
});

describe('deploy/compose', () => {
  it('is valid for docker-compose config', async () => {
    const r = await validate(['--compose', COMPOSE]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`valid: ${COMPOSE}`);
  });

  it('docker-compose config refuses an unknown option', async () => {
    const broken = join(ROOT, 'deploy/compose', `.broken-${process.pid}.yaml`); // beside the real one: same relative build paths
    try {
      writeFileSync(broken, readFileSync(COMPOSE, 'utf8').replace('    depends_on:\n      cassandra:', '    dependson:\n      cassandra:'));
      const r = await validate(['--compose', broken]);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/Unsupported config option for services\.migrate: 'dependson'/);
    } finally {
      rmSync(broken, { force: true });
    }
  });

  it('needs the bootstrap admin token from the environment, naming the variable when it is missing', async () => {
    const { QUIRE_BOOTSTRAP_ADMIN_TOKEN: _set, ...env } = process.env;
    const r = await run('docker-compose', ['-f', COMPOSE, 'config', '-q'], { ...env, QUIRE_PUBLISH_HINT_TOKEN: mintTokenString() });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('in service "migrate": set QUIRE_BOOTSTRAP_ADMIN_TOKEN to the first admin token');
  });

  it('runs Cassandra, an S3 server, the migration job, publish ×1, consume ×2 and the UI, each app configured with Quire variables it loads', async () => {
    const bootstrap = mintTokenString();
    const hint = mintTokenString();
    const r = await run('docker-compose', ['-f', COMPOSE, 'config'], { ...process.env, QUIRE_BOOTSTRAP_ADMIN_TOKEN: bootstrap, QUIRE_PUBLISH_HINT_TOKEN: hint });
    expect(r.code, r.out).toBe(0);
    interface Service {
      image: string;
      command?: string[];
      environment?: Record<string, string | null>;
      ports?: Array<{ published: number; target: number }>;
      depends_on?: Record<string, { condition: string }>;
    }
    const services = (parse(r.out) as { services: Record<string, Service> }).services;
    const byApp = (app: string): string[] => Object.keys(services).filter((n) => appOf(services[n]?.command) === app);
    expect(byApp('publish')).toHaveLength(1);
    expect(byApp('consume')).toHaveLength(2);
    expect(byApp('migrate')).toHaveLength(1);
    expect(Object.values(services).map((s) => s.image.split(':')[0])).toEqual(expect.arrayContaining(['cassandra', 'andrewgaul/s3proxy', 'quire/admin-ui']));

    const known = new Set(knownVariables());
    const published = new Set<number>();
    for (const [name, s] of Object.entries(services)) {
      const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, v ?? '']));
      for (const k of Object.keys(env)) if (k.startsWith('QUIRE_')) expect(known, `compose ${name}: ${k}`).toContain(k);
      for (const p of s.ports ?? []) {
        expect(published, `compose ${name}: host port ${p.published} used twice`).not.toContain(p.published);
        published.add(p.published);
      }
      const app = appOf(s.command);
      if (app === undefined) continue;
      const config = loadFor(app, env);
      // Access control on in every service; the migration registers the first admin token.
      if (app === 'migrate') {
        expect(config.bootstrapAdminToken, `compose ${name} registers the bootstrap admin token`).toBe(bootstrap);
        expect(config.hintToken, `compose ${name} registers the change-hint token`).toBe(hint);
      } else expect(config.auth?.enabled, `compose ${name} runs with access control on`).toBe(true);
      // Change hints (ADR 0009): each consume service watches the publish service, with the token.
      if (app === 'consume') expect([config.publishHintEndpoints, config.publishHintToken], `compose ${name} watches change hints`).toEqual([['publish:7444'], hint]);
      if (config.httpPort !== undefined) expect(s.ports?.map((p) => p.target), `compose ${name} publishes its REST port`).toContain(config.httpPort);
      if (app !== 'migrate') expect(s.depends_on?.['migrate']?.condition, `compose ${name} waits for the migration`).toBe('service_completed_successfully');
      // The entry is a bundle `pnpm build` writes (in the image's build stage), from a source that exists.
      const built = /^apps\/([^/]+)\/dist\/main\.js$/.exec(s.command?.[0] ?? '')?.[1];
      expect(APPS, `compose ${name}: ${s.command?.[0]} is built by pnpm build`).toContain(built);
      expect(existsSync(join(ROOT, 'apps', built ?? '', 'src/main.ts'))).toBe(true);
    }
  });

  it('the images run as non-root users, the ones the Kubernetes pods expect', () => {
    const server = readFileSync(join(ROOT, 'deploy/docker/service.Dockerfile'), 'utf8');
    const ui = readFileSync(join(ROOT, 'deploy/docker/admin-ui.Dockerfile'), 'utf8');
    const lastUser = (dockerfile: string): string | undefined => [...dockerfile.matchAll(/^USER (\S+)$/gm)].at(-1)?.[1];
    expect(lastUser(server)).toBe('1000:1000');
    expect(lastUser(ui)).toBe('101');
    expect(template(named('Deployment', 'quire-publish')).spec.securityContext?.runAsUser).toBe(1000);
    expect(template(named('Deployment', 'quire-admin-ui')).spec.securityContext?.runAsUser).toBe(101);
    // Several stages each, the runtime one last.
    for (const d of [server, ui]) expect([...d.matchAll(/^FROM .* AS (\S+)$/gm)].map((m) => m[1])).toEqual(['build', 'runtime']);
    // The images install the pnpm that package.json pins. The server image builds the apps
    // (`pnpm build`, which needs the dev install's esbuild), then keeps a production-only install,
    // and runs the compiled bundles with plain node (no tsx).
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { packageManager: string; scripts: Record<string, string>; devDependencies?: Record<string, string> };
    for (const d of [server, ui]) expect(d).toContain(`npm install -g --no-fund --no-audit ${pkg.packageManager}`);
    expect(pkg.scripts['build'], 'the root build script').toBe('tsx scripts/build.ts');
    expect(pkg.devDependencies?.['esbuild'], 'esbuild is a dev dependency of the root').toBeDefined();
    const steps = ['RUN pnpm install --offline --frozen-lockfile \\\n', ' && pnpm build \\\n', ' && pnpm install --offline --frozen-lockfile --prod \\\n'].map((step) => server.indexOf(step));
    expect(steps.every((at) => at > 0) && [...steps].sort((a, b) => a - b).join() === steps.join(), 'full install, build, then production install, in that order').toBe(true);
    expect(server).toMatch(/^ENTRYPOINT \["node"\]$/m);
    expect(server).toMatch(/^CMD \["apps\/publish-service\/dist\/main\.js"\]$/m);
    expect(server).not.toContain('tsx"');
    // The UI's nginx proxies /api/ to the upstream the compose file and the k8s Deployment set.
    const nginx = readFileSync(join(ROOT, 'deploy/docker/admin-ui.nginx.conf.template'), 'utf8');
    expect(nginx).toMatch(/location \/api\/ \{\s*proxy_pass \$\{PUBLISH_UPSTREAM\}\/;/);
    expect(template(named('Deployment', 'quire-admin-ui')).spec.containers[0]?.env?.map((e) => e.name)).toContain('PUBLISH_UPSTREAM');
  });
});
