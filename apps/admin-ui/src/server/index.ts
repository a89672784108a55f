/**
 * The admin UI's server side, for the quickstart and the browser tests:
 *
 * - `buildUi()` builds the React app into `dist/` with Vite, unless `dist/` is newer than
 *   every source file (a fresh clone has no dist; a second start costs nothing);
 * - `startUiServer()` serves `dist/` and proxies `/api/*` to the publish service, so the
 *   operator has one URL and the browser talks to one origin (no CORS). Unknown paths get
 *   `index.html` (the UI's URLs are shareable: /topics/:name, /topics/:name/diff?...).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import fastifyProxy from '@fastify/http-proxy';

export const UI_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const UI_DIST = join(UI_ROOT, 'dist');

const SOURCES = ['src', 'index.html', 'vite.config.ts', 'package.json'];

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) {
    if (name === 'server') continue; // the server side is not part of the bundle
    newest = Math.max(newest, newestMtime(join(path, name)));
  }
  return newest;
}

/** True when dist/ is missing or older than a source file. */
export function uiBuildIsStale(): boolean {
  const index = join(UI_DIST, 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  return SOURCES.some((s) => existsSync(join(UI_ROOT, s)) && newestMtime(join(UI_ROOT, s)) > built);
}

/** Build the UI into dist/ when stale. Returns whether it built. */
export async function buildUi(options: { force?: boolean; log?: (line: string) => void } = {}): Promise<boolean> {
  if (!options.force && !uiBuildIsStale()) return false;
  const log = options.log ?? (() => {});
  log('admin-ui: building the UI (vite build)');
  const started = Date.now();
  const { build } = await import('vite');
  await build({ configFile: join(UI_ROOT, 'vite.config.ts'), root: UI_ROOT, logLevel: 'warn' });
  log(`admin-ui: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return true;
}

export interface UiServerOptions {
  /** Base URL of the publish service's REST API, e.g. http://127.0.0.1:7080. */
  publishUrl: string;
  host?: string;
  /** Default 7070; 0 = any free port. */
  port?: number;
  distDir?: string;
}

export interface RunningUiServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function startUiServer(options: UiServerOptions): Promise<RunningUiServer> {
  const distDir = options.distDir ?? UI_DIST;
  if (!existsSync(join(distDir, 'index.html'))) throw new Error(`admin-ui: ${distDir}/index.html is missing; run buildUi() first`);
  const app = Fastify({ logger: false });
  await app.register(fastifyProxy, { upstream: options.publishUrl, prefix: '/api', rewritePrefix: '', http: { requestOptions: { timeout: 120_000 } } });
  await app.register(fastifyStatic, { root: distDir, prefix: '/', wildcard: false, index: ['index.html'] });
  app.setNotFoundHandler((req, reply) => {
    if (req.method === 'GET' && !req.url.startsWith('/api/') && !req.url.startsWith('/assets/')) return reply.type('text/html').sendFile('index.html');
    return reply.status(404).send({ error: { code: 'NOT_FOUND', message: `${req.method} ${req.url} not found` } });
  });
  const address = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 7070 });
  return { url: address, app, close: () => app.close() };
}
