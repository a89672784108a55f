/**
 * Starts Quire's processes on the embedded default, each from its own app's entry point
 * as a separate process (as in production), all sharing one data directory: the SQLite
 * metadata store and the local blob directory. The services run compiled, as the server
 * image runs them: `pnpm build` (scripts/build.ts, esbuild, about a second) bundles each
 * into apps/<app>/dist/main.js first, so a source edit is picked up at the next start.
 */
import { createRequire } from 'node:module';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bootstrapAdminToken, createStores, loadConfig, localHintToken } from '@quire/publish-service';
import { buildUi, startUiServer } from '@quire/admin-ui';

export interface QuickstartOptions {
  dataDir: string;
  host?: string;
  publishHttpPort?: number;
  publishGrpcPort?: number;
  consumeHttpPort?: number;
  consumeGrpcPort?: number;
  /** Port of the admin UI (built when stale, served with /api proxied to the publish service); default 7070. */
  uiPort?: number;
  /** Where child output goes (default: this process's stdout/stderr, prefixed). */
  log?: (line: string) => void;
  /** Access control (QUIRE_AUTH=on) in both services; default true. */
  auth?: boolean;
}

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
}

export interface RunningQuickstart {
  publishUrl: string;
  publishGrpc: string;
  consumeUrl: string;
  consumeGrpc: string;
  /** The admin UI (one URL for operators). */
  uiUrl: string;
  dataDir: string;
  /** The admin token created at the first start with access control on (shown once); undefined later. */
  adminToken?: string;
  processes: ServiceProcess[];
  stop(): Promise<void>;
}

const appsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// `node --import tsx`: each service is its own process (no wrapper in between), so
// signals reach it directly.
const tsxLoader = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/loader.mjs')).href;

/** `pnpm build publish-service consume-service`: the bundles the services run from. */
function buildServices(log: (line: string) => void): Promise<void> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    execFile(process.execPath, ['--import', tsxLoader, resolve(appsDir, '../scripts/build.ts'), 'publish-service', 'consume-service'], (err, stdout, stderr) => {
      if (err) reject(new Error(`building the services failed (pnpm build): ${err.message}\n${stdout}${stderr}`));
      else {
        log(`built the services in ${Date.now() - started} ms (pnpm build)`);
        resolvePromise();
      }
    });
  });
}

function startService(
  name: string,
  entry: string,
  env: Record<string, string>,
  readyLine: RegExp,
  log: (line: string) => void,
): Promise<{ proc: ServiceProcess; match: RegExpMatchArray }> {
  // Children get the parent's environment minus other QUIRE_* settings, plus their own.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUIRE_')));
  const child = spawn(process.execPath, [entry], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = { name, child };
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const onLine = (line: string): void => {
      log(`[${name}] ${line}`);
      const m = line.match(readyLine);
      if (m && !settled) {
        settled = true;
        resolvePromise({ proc, match: m });
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    }
    child.on('exit', (code, signal) => {
      if (!settled) {
        settled = true;
        reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`));
      }
    });
  });
}

function stopProcess(p: ServiceProcess): Promise<void> {
  return new Promise((res) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return res();
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
    p.child.once('exit', () => {
      clearTimeout(timer);
      res();
    });
    p.child.kill('SIGTERM');
  });
}

export async function startQuickstart(options: QuickstartOptions): Promise<RunningQuickstart> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const processes: ServiceProcess[] = [];
  const auth = options.auth ?? true;
  const authEnv = { QUIRE_AUTH: auth ? 'on' : 'off' };
  let closeUi: (() => Promise<void>) | undefined;
  const stop = async (): Promise<void> => {
    await closeUi?.();
    await Promise.all(processes.map(stopProcess));
  };
  try {
    await buildServices(log);
    const publish = await startService(
      'publish',
      resolve(appsDir, 'publish-service/dist/main.js'),
      {
        QUIRE_METADATA_STORE: 'embedded',
        QUIRE_DATA_DIR: dataDir,
        QUIRE_HOST: host,
        QUIRE_PUBLISH_HTTP_PORT: String(options.publishHttpPort ?? 7080),
        QUIRE_PUBLISH_GRPC_PORT: String(options.publishGrpcPort ?? 7444),
        QUIRE_LOG_LEVEL: 'warn',
        ...authEnv,
      },
      /listening: rest (\S+) grpc (\S+)/,
      log,
    );
    processes.push(publish.proc);
    // The publish service has migrated the store: the first admin token goes straight into it.
    let adminToken: string | undefined;
    // The consume service's change-hint token (ADR 0009), kept in the data directory.
    let hintToken: string | undefined;
    if (auth) {
      const stores = await createStores(loadConfig({ QUIRE_METADATA_STORE: 'embedded', QUIRE_DATA_DIR: dataDir }));
      try {
        adminToken = await bootstrapAdminToken(stores.store, 'quickstart-admin', 'quickstart');
        hintToken = await localHintToken(stores.store, join(dataDir, 'consume-hints.token'));
      } finally {
        await stores.close();
      }
    }
    const consume = await startService(
      'consume',
      resolve(appsDir, 'consume-service/dist/main.js'),
      {
        QUIRE_METADATA_STORE: 'embedded',
        QUIRE_DATA_DIR: dataDir,
        QUIRE_HOST: host,
        QUIRE_CONSUME_HTTP_PORT: String(options.consumeHttpPort ?? 7081),
        QUIRE_CONSUME_GRPC_PORT: String(options.consumeGrpcPort ?? 7443),
        QUIRE_LOG_LEVEL: 'warn',
        // A commit on the publish service wakes the consume service's change-feed read at once.
        QUIRE_PUBLISH_HINT_ENDPOINTS: publish.match[2] as string,
        ...(hintToken === undefined ? {} : { QUIRE_PUBLISH_HINT_TOKEN: hintToken }),
        ...authEnv,
      },
      /listening: rest (\S+) grpc (\S+)/,
      log,
    );
    processes.push(consume.proc);
    await buildUi({ log });
    const ui = await startUiServer({ publishUrl: publish.match[1] as string, host, port: options.uiPort ?? 7070 });
    closeUi = ui.close;
    return {
      uiUrl: ui.url,
      publishUrl: publish.match[1] as string,
      publishGrpc: publish.match[2] as string,
      consumeUrl: consume.match[1] as string,
      consumeGrpc: consume.match[2] as string,
      dataDir,
      ...(adminToken === undefined ? {} : { adminToken }),
      processes,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
