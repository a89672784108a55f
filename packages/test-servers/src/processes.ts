// Quire's own services as real OS processes, each started from its app's entry point
// (`apps/<app>/src/main.ts`, through tsx; or, with `compiled`, the production artefact
// `apps/<app>/dist/main.js` that `pnpm build` writes), for tests that need process
// boundaries: end-to-end runs, kill / restart scenarios.
import { createRequire } from 'node:module';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../../..');
// `node --import tsx` (not the tsx CLI): the child's pid is the service itself, so
// kill() really crashes the service instead of orphaning it behind a wrapper.
const TSX_LOADER = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/loader.mjs')).href;

export interface QuireProcess {
  app: string;
  child: ChildProcess;
  /** REST base URL and gRPC address, as the service printed them. */
  httpUrl: string;
  grpcAddress: string;
  /** Everything the process printed so far (for failure messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL at once (a crash). */
  kill(): Promise<void>;
}

/**
 * `pnpm build` for `apps` (scripts/build.ts: esbuild bundles of apps/<app>/src/main.ts into
 * apps/<app>/dist/main.js). Rejects with the build's output when it fails.
 */
export function buildQuireApps(apps: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', TSX_LOADER, join(REPO, 'scripts/build.ts'), ...apps], { cwd: REPO }, (err, stdout, stderr) => {
      if (err) reject(new Error(`pnpm build ${apps.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve();
    });
  });
}

export interface StartOptions {
  /** Run the compiled build (`apps/<app>/dist/main.js`, see buildQuireApps) instead of the TS source through tsx. */
  compiled?: boolean;
}

/**
 * Start `apps/<app>/src/main.ts` (or with `compiled`, `apps/<app>/dist/main.js`) with `env` (only these QUIRE_* variables; the rest of the
 * parent's environment minus its QUIRE_* ones) and wait for its `listening: rest <url> grpc <addr>`
 * line. Ports 0 are fine: the line carries the real ones. Fails with the process output.
 */
export function startQuireProcess(app: string, env: Record<string, string>, timeoutMs = 60_000, options: StartOptions = {}): Promise<QuireProcess> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUIRE_')));
  const compiled = join(REPO, 'apps', app, 'dist/main.js');
  if (options.compiled === true && !existsSync(compiled)) return Promise.reject(new Error(`${compiled} is missing: run \`pnpm build ${app}\` (or buildQuireApps) first`));
  const args = options.compiled === true ? [compiled] : ['--import', TSX_LOADER, join(REPO, 'apps', app, 'src/main.ts')];
  const child = spawn(process.execPath, args, {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const proc = (httpUrl: string, grpcAddress: string): QuireProcess => ({
    app,
    child,
    httpUrl,
    grpcAddress,
    output: () => out,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${app} did not report listening within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      const m = out.match(/listening: rest (\S+) grpc (\S+)/);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
        resolve(proc(m[1] as string, m[2] as string));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${app} exited (code ${code}) before it was listening:\n${out}`));
    });
  });
}
