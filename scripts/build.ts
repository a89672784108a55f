// `pnpm build`: the compiled build of Quire's Node processes, what production images and the
// benchmarks run (no tsx, no TypeScript compiler at run time). Each app's src/main.ts becomes
// apps/<app>/dist/main.js, one ESM file bundled by esbuild with the workspace's @quire/* TS
// sources inside it; npm dependencies stay external, loaded from node_modules at run time.
//
// Why not esbuild's `packages: 'external'`: it would leave `@quire/*` imports external too,
// and Node cannot load their TypeScript. So the plugin below keeps only non-workspace
// packages external. An external import is rewritten to the file it names *through the
// importing workspace package's own node_modules link* (pnpm links only a package's declared
// dependencies into its node_modules, so `cassandra-driver`, imported by
// packages/metadata-store, is not resolvable from apps/consume-service/dist/). The links are
// the same in a dev and a `--prod` install, and Node follows them to one real file, so two
// workspace packages importing `fastify` still share one instance.
//
// Files found through `import.meta.url` (proto/ from packages/proto/src, ../package.json from
// apps/cli/src) keep working because dist/ sits at the same depth as every src/ folder
// (<root>/<apps|packages>/<name>/<folder>); the build refuses a bundled module that uses
// import.meta.url from another depth.
//
// Usage: pnpm build [app...]   (default: every app in APPS; `bench-worker` is built by `pnpm bench`)
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** The long-running apps and the CLI (`quire migrate` is the schema job in the server image). */
export const APPS = ['publish-service', 'consume-service', 'cli'] as const;

/** The package a bare specifier names: `@scope/name` or `name` (subpaths dropped). */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

/** The `node_modules/<name>` link visible from `dir` (Node's lookup, without following links). */
function linkFrom(dir: string, name: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    const candidate = join(d, 'node_modules', name);
    if (existsSync(candidate)) return candidate;
    if (dirname(d) === d) return undefined;
  }
}

const toPosix = (p: string): string => p.split(sep).join('/');

function externalNpm(outdir: string): Plugin {
  return {
    name: 'quire-external-npm',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.path.startsWith('node:') || args.pluginData === 'quire-inner') return undefined;
        if (args.path.startsWith('@quire/')) return undefined; // bundled: workspace TS source
        const name = packageName(args.path);
        const link = linkFrom(args.resolveDir, name);
        // A Node builtin without the node: prefix, or something esbuild itself reports.
        if (link === undefined) return undefined;
        const found = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'quire-inner' });
        if (found.errors.length > 0) return { errors: found.errors };
        const inside = relative(realpathSync(link), found.path);
        if (inside.startsWith('..')) throw new Error(`${args.path} (from ${args.importer}) resolved outside its package: ${found.path}`);
        const target = join(link, inside);
        let spec = toPosix(relative(outdir, target));
        if (!spec.startsWith('.')) spec = `./${spec}`;
        return { path: spec, external: true };
      });
      // import.meta.url in a bundled module means "relative to my own file": only right when
      // the bundle sits at the module's depth below the repository root.
      const depth = (p: string): number => toPosix(relative(ROOT, p)).split('/').length;
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (args.path.includes(`${sep}node_modules${sep}`) && !args.path.includes(`${sep}@quire${sep}`)) return undefined;
        const text = await readFile(args.path, 'utf8');
        if (/import\.meta\.(url|dirname|filename)/.test(text) && depth(dirname(args.path)) !== depth(outdir)) {
          throw new Error(`${relative(ROOT, args.path)} uses import.meta at another depth than ${relative(ROOT, outdir)}: its relative paths would break in the bundle`);
        }
        return undefined;
      });
    },
  };
}

/**
 * Extra build targets beside the apps: the benchmarks' worker process (load generators,
 * subscribers, the bare reference servers), so the SDK runs in it as a user's compiled code
 * runs, not through tsx (which alone adds about 25 MiB of RSS). Its bundle sits three folders
 * deep, like every src/ folder whose module uses import.meta.url (packages/proto/src).
 */
const EXTRA: Record<string, { entry: string; outfile: string }> = {
  'bench-worker': { entry: 'bench/src/worker.ts', outfile: 'bench/dist/worker/worker.js' },
};

export const TARGETS: readonly string[] = [...APPS, ...Object.keys(EXTRA)];

export async function buildApp(app: string): Promise<string> {
  const extra = EXTRA[app];
  if (extra !== undefined) return bundle(join(ROOT, extra.entry), join(ROOT, extra.outfile), extra.entry);
  return bundle(join(ROOT, 'apps', app, 'src/main.ts'), join(ROOT, 'apps', app, 'dist/main.js'), `apps/${app}/src/main.ts`);
}

async function bundle(entry: string, outfile: string, label: string): Promise<string> {
  const outdir = dirname(outfile);
  const result = await build({
    entryPoints: [entry],
    outfile,
    // Written below, each file renamed into place: a process starting from dist/ while another
    // build runs (tests in parallel, a quickstart) reads the old bundle or the new, never half.
    write: false,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20.19',
    // Only what Node itself would pick: no bundler-only `module` condition.
    conditions: ['node'],
    mainFields: ['main'],
    sourcemap: true,
    logLevel: 'warning',
    // Names stay readable in stack traces and logs (class names are used in error mapping).
    keepNames: true,
    banner: { js: `// Built by scripts/build.ts from ${label}: do not edit.` },
    plugins: [externalNpm(outdir)],
  });
  await mkdir(outdir, { recursive: true });
  for (const f of result.outputFiles) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    await writeFile(tmp, f.contents);
    await rename(tmp, f.path);
  }
  return outfile;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((a) => !TARGETS.includes(a));
  if (unknown.length > 0) {
    process.stderr.write(`build: unknown app ${unknown.join(', ')} (known: ${TARGETS.join(', ')})\n`);
    process.exit(2);
  }
  for (const app of wanted.length > 0 ? wanted : APPS) {
    const started = Date.now();
    const out = await buildApp(app);
    process.stdout.write(`built ${relative(ROOT, out)} in ${Date.now() - started} ms\n`);
  }
}
