/**
 * The `quire` program: commander parses, each action turns options into SDK calls
 * (@quire/client) and prints the result — data and results on stdout, progress, notices
 * and errors on stderr. `run(argv)` returns the exit status (see exit-codes.ts) and never
 * calls `process.exit` itself.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { userInfo } from 'node:os';
import { extname, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import {
  RETRYABLE_CODES,
  createConsumer,
  createLocalKeyring,
  createPublisher,
  type KeyProvider,
  type AuditEntryInfo,
  type Consumer,
  type PinInfo,
  type Publisher,
  type PublishInput,
  type RolloutControl,
  type RolloutRunInfo,
  type VersionInfo,
} from '@quire/client';
import { Code, QuireError } from '@quire/core';
import {
  parseCount,
  parseDuration,
  parseEndpoint,
  parseEndpoints,
  parseIdentity,
  parseList,
  parseMetadata,
  parsePlan,
  parseS3Regions,
  parseScope,
  parseScopes,
  parseSize,
  parseTime,
  parseVersion,
} from './args.ts';
import { EXIT, EXIT_CODES_HELP, errorJson, exitCodeOf, formatError } from './exit-codes.ts';
import { formatAttributes, formatBytes, formatDuration, formatPointer, formatScopes, formatSpan, formatTime, table, topicDetails, versionLine } from './format.ts';
import { createProgress } from './progress.ts';
import { listTopics } from './topic-list.ts';
import { registerKeyCommands, registerTokenCommands } from './tokens.ts';

const { version: CLI_VERSION } = createRequire(import.meta.url)('../package.json') as { version: string };

/** The identity read-only commands poll or read history as when `--as` is not given. */
const CLI_IDENTITY = { application: 'quire-cli' };
/** How long `watch` holds each long-poll on the server. */
const WATCH_WAIT_MS = 30_000;
/** Below this, uploads show no progress unless `--progress` asks. */
const PROGRESS_MIN_BYTES = 1024 * 1024;

interface Globals {
  publish: string;
  consume: string[];
  actor: string | undefined;
  /** API token (QUIRE_TOKEN / --token), sent on every call. */
  token: string | undefined;
  /** Keyring file of encrypted topics' keys (QUIRE_KEYRING / --keyring). */
  keyring: string | undefined;
  json: boolean;
  s3: ReturnType<typeof parseS3Regions>;
}

interface RawGlobals {
  publish: string;
  consume: string;
  actor?: string;
  token?: string;
  keyring?: string;
  json?: boolean;
  s3Regions?: string;
}

const out = (text: string): Promise<void> => write(process.stdout, text);
const err = (text: string): Promise<void> => write(process.stderr, text);
function write(stream: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> {
  return new Promise((res, rej) => stream.write(data, (e) => (e ? rej(e) : res())));
}
const json = (value: unknown): Promise<void> => out(`${JSON.stringify(value)}\n`);

function defaultActor(): string | undefined {
  try {
    return userInfo().username || undefined;
  } catch {
    return undefined;
  }
}

function globals(cmd: Command): Globals {
  const o = cmd.optsWithGlobals<RawGlobals>();
  return {
    publish: parseEndpoint(o.publish, 'publish'),
    consume: parseEndpoints(o.consume, 'consume'),
    actor: o.actor ?? defaultActor(),
    token: o.token === undefined || o.token.trim() === '' ? undefined : o.token.trim(),
    keyring: o.keyring === undefined || o.keyring.trim() === '' ? undefined : resolve(o.keyring.trim()),
    json: o.json === true,
    s3: o.s3Regions === undefined || o.s3Regions.trim() === '' ? {} : parseS3Regions(o.s3Regions),
  };
}

/** The token option of the SDK's constructors (none without a token). */
const withToken = (g: Globals): { token?: string } => (g.token === undefined ? {} : { token: g.token });
/** The keyring option of the SDK's constructors: publish encrypts, get / watch decrypt encrypted topics. */
const withKeyring = (g: Globals): { keyring?: KeyProvider } => (g.keyring === undefined ? {} : { keyring: createLocalKeyring(g.keyring) });

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Content type from a file's extension when `--content-type` is not given ('' = the service's default). */
function guessContentType(path: string): string {
  const types: Record<string, string> = {
    '.json': 'application/json',
    '.txt': 'text/plain',
    '.csv': 'text/csv',
    '.yaml': 'application/yaml',
    '.yml': 'application/yaml',
    '.xml': 'application/xml',
    '.parquet': 'application/vnd.apache.parquet',
    '.gz': 'application/gzip',
  };
  return types[extname(path).toLowerCase()] ?? '';
}

export function buildProgram(): Command {
  const program = new Command('quire');
  program
    .description('Quire from a terminal: topics, publish, get, versions, watch, release, pins, rollback, rollouts, audit.')
    .version(CLI_VERSION)
    .addOption(new Option('--publish <host:port>', 'publish service (gRPC)').env('QUIRE_PUBLISH').default('127.0.0.1:7444'))
    .addOption(new Option('--consume <host:port,...>', 'consume service(s) (gRPC), taken in turn').env('QUIRE_CONSUME').default('127.0.0.1:7443'))
    .addOption(new Option('--actor <name>', 'who you are (audit log, version publisher; default: your user name)').env('QUIRE_ACTOR'))
    .addOption(new Option('--keyring <file>', 'keyring of encrypted topics\' keys (publish encrypts, get and watch decrypt); see `quire keys add`').env('QUIRE_KEYRING'))
    .addOption(new Option('--token <token>', 'API token (services running with QUIRE_AUTH=on); prefer the environment variable over the command line').env('QUIRE_TOKEN'))
    .addOption(
      new Option('--s3-regions <json>', 'how get/watch read S3-stored versions: [{"name","endpoint","accessKeyId","secretAccessKey"}], as the services take it').env(
        'QUIRE_S3_REGIONS',
      ),
    )
    .option('--json', 'machine-readable output on stdout (one JSON value, or one per line for watch)')
    .addHelpText('after', `\n${EXIT_CODES_HELP}\n\nErrors print as "quire: <message> (field: <name>)" on stderr.`)
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: () => {} });

  // ── topics ──────────────────────────────────────────────────────────────
  const topics = program.command('topics').description('list, create and inspect topics');

  topics
    .command('list')
    .description('list topics')
    .option('--prefix <prefix>', 'only topics whose name starts with this')
    .option('--limit <n>', 'at most this many', '100')
    .action(async (o: { prefix?: string; limit: string }, cmd: Command) => {
      const g = globals(cmd);
      const limit = parseCount(o.limit, 'limit');
      const page = await listTopics({ endpoint: g.publish, limit, ...withToken(g), ...(g.actor === undefined ? {} : { actor: g.actor }), ...(o.prefix === undefined ? {} : { prefix: o.prefix }) });
      if (g.json) return json(page.topics);
      await out(
        table(
          ['NAME', 'OWNER', 'HEAD', 'DESCRIPTION'],
          page.topics.map((t) => [t.name, t.owner || '-', t.headVersion === 0 ? '-' : `v${t.headVersion}`, t.description || '-']),
        ),
      );
      if (page.next !== undefined) await err(`quire: more topics than --limit ${limit}\n`);
    });

  topics
    .command('create <name>')
    .description('create a topic')
    .option('--owner <owner>', 'owning team or person (default: the actor)')
    .option('--description <text>', 'what the topic holds')
    .option('--inline-threshold <size>', 'payloads up to this size are stored inline (e.g. 65536, 512KiB, 1MiB; default 1MiB)')
    .option('--keep-last <n>', 'retention: keep the last n versions')
    .option('--max-age <duration>', 'retention: delete versions older than this (e.g. 12h, 7d)')
    .option('--encrypt <keyId>', 'encrypt every payload (AES-256-GCM envelope encryption) under this key of the keyring')
    .action(async (name: string, o: { owner?: string; description?: string; inlineThreshold?: string; keepLast?: string; maxAge?: string; encrypt?: string }, cmd: Command) => {
      const g = globals(cmd);
      const retention: { keepLast?: number; maxAgeMs?: number } = {};
      if (o.keepLast !== undefined) retention.keepLast = parseCount(o.keepLast, 'keep-last');
      if (o.maxAge !== undefined) retention.maxAgeMs = parseDuration(o.maxAge, 'max-age');
      const inline = o.inlineThreshold === undefined ? undefined : parseSize(o.inlineThreshold, 'inline-threshold');
      const pub = createPublisher({ endpoint: g.publish, ...withToken(g), ...withKeyring(g), ...(g.actor === undefined ? {} : { actor: g.actor }) });
      try {
        const t = await pub.createTopic({
          name,
          ...(o.owner === undefined ? {} : { owner: o.owner }),
          ...(o.description === undefined ? {} : { description: o.description }),
          ...(inline === undefined ? {} : { inlineThresholdBytes: inline }),
          ...(Object.keys(retention).length === 0 ? {} : { retention }),
          ...(o.encrypt === undefined ? {} : { encryption: { keyId: o.encrypt } }),
        });
        if (g.json) return json(t);
        await out(topicDetails(t));
      } finally {
        pub.close();
      }
    });

  topics
    .command('get <name>')
    .description("show a topic's settings and head version")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const g = globals(cmd);
      const pub = createPublisher({ endpoint: g.publish, ...withToken(g), ...withKeyring(g), ...(g.actor === undefined ? {} : { actor: g.actor }) });
      try {
        const t = await pub.getTopic(name);
        if (g.json) return json(t);
        await out(topicDetails(t));
      } finally {
        pub.close();
      }
    });

  // ── publish ─────────────────────────────────────────────────────────────
  program
    .command('publish <topic> [file]')
    .description('publish a new version: a file, - for stdin, or --string <text>')
    .option('--string <text>', 'publish this text (UTF-8)')
    .option('--meta <key=value>', 'metadata entry (repeatable)', collect)
    .option('--content-type <type>', 'content type (default: from the file extension, else the service default)')
    .option('--scope <k=v,...>', 'release to this scope, "global" for all (repeatable; default global)', collect)
    .option('--region <name>', 'upload to this S3 region only (repeatable or comma-separated; default all)', collect)
    .option('--progress', 'show upload progress on stderr even when it is not a terminal')
    .option('--no-progress', 'never show upload progress')
    .action(async (topic: string, file: string | undefined, o: { string?: string; meta?: string[]; contentType?: string; scope?: string[]; region?: string[]; progress?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      const metadata = parseMetadata(o.meta ?? []);
      const scopes = parseScopes(o.scope ?? []);
      const regions = parseList(o.region ?? []);
      if ((file === undefined) === (o.string === undefined)) {
        throw QuireError.invalid(file === undefined ? 'file' : 'string', 'give exactly one of a file path, - for stdin, or --string <text>');
      }
      const input: PublishInput = {
        metadata,
        ...(scopes.length === 0 ? {} : { scopes }),
        ...(regions.length === 0 ? {} : { regions }),
      };
      let knownSize: number | undefined;
      if (o.string !== undefined) {
        input.data = o.string;
        knownSize = Buffer.byteLength(o.string);
      } else if (file === '-') {
        input.stream = process.stdin;
      } else {
        const path = resolve(file as string);
        input.file = path;
        const guessed = guessContentType(path);
        if (o.contentType === undefined && guessed !== '') input.contentType = guessed;
      }
      if (o.contentType !== undefined) input.contentType = o.contentType;

      const forced = o.progress === true;
      const allowed = o.progress !== false && (forced || process.stderr.isTTY === true);
      const progress = allowed ? createProgress(process.stderr, `publishing ${topic}`) : undefined;
      if (progress !== undefined) {
        input.onProgress = (p) => {
          const total = p.totalBytes ?? knownSize;
          if (!forced && total !== undefined && total < PROGRESS_MIN_BYTES) return;
          progress.update(p.sentBytes, total);
        };
      }
      const pub = createPublisher({ endpoint: g.publish, ...withToken(g), ...withKeyring(g), ...(g.actor === undefined ? {} : { actor: g.actor }) });
      try {
        const v = await pub.publish(topic, input);
        progress?.done();
        if (g.json) return json(v);
        await out(`${versionLine(v)}\n`);
      } finally {
        pub.close();
      }
    });

  // ── get ─────────────────────────────────────────────────────────────────
  program
    .command('get <topic> [version]')
    .description("write a version's bytes (checked against its SHA-256) to stdout or a file; without a version, the latest for --as")
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .option('--as <k=v,...>', 'consumer identity that decides the latest version (application required)')
    .action(async (topic: string, versionArg: string | undefined, o: { output?: string; as?: string }, cmd: Command) => {
      const g = globals(cmd);
      const version = versionArg === undefined ? undefined : parseVersion(versionArg);
      if (version === undefined && o.as === undefined) throw QuireError.invalid('as', 'give a version, or --as application=<name>,… to get the latest for that consumer');
      const identity = o.as === undefined ? CLI_IDENTITY : parseIdentity(o.as);
      let bytes: Uint8Array;
      let descriptor: VersionInfo;
      if (version !== undefined) {
        const c = createConsumer({ endpoints: g.consume, ...withToken(g), ...withKeyring(g), identity, s3: g.s3 });
        try {
          descriptor = await c.getVersion(topic, version);
          bytes = await c.download(topic, version).catch((e: unknown) => {
            throw s3Hint(e, descriptor, g);
          });
        } finally {
          await c.close();
        }
      } else {
        ({ bytes, descriptor } = await latestFor(g, topic, identity));
      }
      if (o.output === undefined) {
        await write(process.stdout, bytes);
        return;
      }
      const target = resolve(o.output);
      const tmp = `${target}.quire-${process.pid}.tmp`;
      try {
        await writeFile(tmp, bytes);
        await rename(tmp, target);
      } catch (e) {
        await rm(tmp, { force: true });
        throw QuireError.invalid('output', `cannot write ${target}: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (g.json) return json({ ...descriptor, path: target });
      await out(`wrote ${target}: ${versionLine(descriptor)}\n`);
    });

  // ── versions ────────────────────────────────────────────────────────────
  program
    .command('versions <topic>')
    .description("a topic's versions, newest first")
    .option('--limit <n>', 'at most this many', '20')
    .action(async (topic: string, o: { limit: string }, cmd: Command) => {
      const g = globals(cmd);
      const limit = parseCount(o.limit, 'limit');
      const c = createConsumer({ endpoints: g.consume, ...withToken(g), ...withKeyring(g), identity: CLI_IDENTITY });
      try {
        const page = await c.listVersions(topic, { limit });
        if (g.json) return json(page.items);
        await out(
          table(
            ['VERSION', 'CREATED', 'PUBLISHER', 'SIZE', 'TYPE', 'POINTER', 'METADATA'],
            page.items.map((v) => [
              v.deletedAt === undefined ? String(v.version) : `${v.version} (deleted)`,
              formatTime(v.createdAt),
              v.publisher || '-',
              formatBytes(v.size),
              v.contentType || '-',
              formatPointer(v),
              formatAttributes(v.metadata),
            ]),
          ),
        );
        if (page.next !== undefined) await err(`quire: more versions than --limit ${limit}\n`);
      } finally {
        await c.close();
      }
    });

  // ── watch ───────────────────────────────────────────────────────────────
  program
    .command('watch <topic>')
    .description('long-poll as a consumer and print one line per new version until Ctrl-C')
    .requiredOption('--as <k=v,...>', 'consumer identity (application required), e.g. application=checkout,region=eu-west-1')
    .option('--once', 'exit after the first new version')
    .option('--current', 'print the version current at start too')
    .action(async (topic: string, o: { as: string; once?: boolean; current?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      await watch(g, topic, parseIdentity(o.as), o.once === true, o.current === true);
    });

  addOperatorCommands(program);

  // ── migrate ─────────────────────────────────────────────────────────────
  program
    .command('migrate')
    .description(
      "apply the metadata store's schema migrations and create the buckets, configured like the services (QUIRE_METADATA_STORE, QUIRE_CASSANDRA_*, QUIRE_S3_REGIONS, QUIRE_CONFIG_FILE, …), then exit; the deploy/ migration job runs this",
    )
    .action(async (_o: unknown, cmd: Command) => {
      const asJson = cmd.optsWithGlobals<{ json?: boolean }>().json === true;
      // Loaded here only: the store adapters (Cassandra, SQLite, S3) are heavy for the other commands.
      const kit = await import('@quire/service-kit');
      let config: ReturnType<typeof kit.loadMigrateConfig>;
      try {
        config = kit.loadMigrateConfig(process.env);
      } catch (e) {
        if (e instanceof kit.ConfigError) throw new QuireError(Code.INVALID_ARGUMENT, `bad configuration: ${e.message}`, { field: e.variable });
        throw e;
      }
      const report = await kit.migrateStores(config, (line) => void err(`quire migrate: ${line}\n`));
      if (asJson) return json(report);
      await out(`migrated: ${report.metadataStore}; ${report.blobStore}\n`);
    });

  registerTokenCommands(program, { globals, out, json });
  registerKeyCommands(program, { globals, out });
  return program;
}

// ── release, pins, rollback, rollouts, audit ──────────────────────────────

async function withPublisher<T>(g: Globals, fn: (pub: Publisher) => Promise<T>): Promise<T> {
  const pub = createPublisher({ endpoint: g.publish, ...withToken(g), ...withKeyring(g), ...(g.actor === undefined ? {} : { actor: g.actor }) });
  try {
    return await fn(pub);
  } finally {
    pub.close();
  }
}

/** `--reason` for the commands that require one: a usage error naming the field when missing. */
function requireReason(reason: string | undefined, what: string): string {
  if (reason === undefined || reason.trim() === '') throw QuireError.invalid('reason', `is required (say why you ${what}: --reason "…")`);
  return reason;
}

const scopeText = (s: Record<string, string>): string => formatScopes([s]);

function addOperatorCommands(program: Command): void {
  program
    .command('release <topic> <version>')
    .description('release an existing version (an older one too) to more scopes')
    .requiredOption('--scope <k=v,...>', 'scope to release to, "global" for all consumers (repeatable)', collect)
    .option('--reason <text>', 'why (recorded in the audit log)')
    .action(async (topic: string, versionArg: string, o: { scope: string[]; reason?: string }, cmd: Command) => {
      const g = globals(cmd);
      const version = parseVersion(versionArg);
      const scopes = parseScopes(o.scope);
      await withPublisher(g, (pub) => pub.release(topic, version, scopes, o.reason ?? ''));
      if (g.json) return json({ topic, version, scopes });
      await out(`released ${topic} v${version} to ${formatScopes(scopes)}\n`);
    });

  program
    .command('pin <topic> <version>')
    .description('pin the topic (or the consumers in --scope) to a version, whatever is published later')
    .option('--reason <text>', 'why (required; recorded with the pin and in the audit log)')
    .option('--scope <k=v,...>', 'only consumers matching this scope (default global)')
    .action(async (topic: string, versionArg: string, o: { reason?: string; scope?: string }, cmd: Command) => {
      const g = globals(cmd);
      const version = parseVersion(versionArg);
      const reason = requireReason(o.reason, 'pin');
      const scope = parseScope(o.scope);
      const pin = await withPublisher(g, (pub) => pub.pin(topic, version, { scope, reason }));
      if (g.json) return json(pin);
      await out(`pinned ${topic} to v${pin.version} in ${scopeText(pin.scope)} (pin ${pin.pinId})\n`);
    });

  program
    .command('unpin <topic>')
    .description('end the pin on exactly this scope (default global)')
    .option('--scope <k=v,...>', 'the pinned scope (default global)')
    .option('--reason <text>', 'why (recorded in the audit log)')
    .action(async (topic: string, o: { scope?: string; reason?: string }, cmd: Command) => {
      const g = globals(cmd);
      const scope = parseScope(o.scope);
      const pin = await withPublisher(g, (pub) => pub.unpin(topic, { scope, ...(o.reason === undefined ? {} : { reason: o.reason }) }));
      if (g.json) return json(pin);
      await out(`unpinned ${topic} in ${scopeText(pin.scope)} (was pinned to v${pin.version})\n`);
    });

  program
    .command('rollback <topic>')
    .description('pin the last version fully rolled out before the current one (in --scope, default global)')
    .option('--reason <text>', 'why (required; recorded with the pin and in the audit log)')
    .option('--scope <k=v,...>', 'roll back only these consumers (default global)')
    .action(async (topic: string, o: { reason?: string; scope?: string }, cmd: Command) => {
      const g = globals(cmd);
      const reason = requireReason(o.reason, 'roll back');
      const scope = parseScope(o.scope);
      const { pin, from } = await withPublisher(g, async (pub) => {
        const p = await pub.rollback(topic, { scope, reason });
        return { pin: p, from: await rollbackSource(pub, topic, p) };
      });
      if (g.json) return json({ ...pin, ...(from === undefined ? {} : { from }) });
      await out(`rolled back ${topic} in ${scopeText(pin.scope)}: pinned v${pin.version}${from === undefined ? '' : ` (from v${from})`}\n`);
    });

  program
    .command('pins <topic>')
    .description("a topic's active pins; every pin ever with --history")
    .option('--history', 'ended pins too')
    .action(async (topic: string, o: { history?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      const pins = await withPublisher(g, (pub) => pub.listPins(topic, { history: o.history === true }));
      if (g.json) return json(pins);
      await out(pinTable(pins, o.history === true));
    });

  // ── rollout ─────────────────────────────────────────────────────────────
  const rollout = program.command('rollout').description("start, control and inspect a version's staged rollout");

  rollout
    .command('start <topic> <version>')
    .description("start a rollout run of a version (stage 1 is released at once), with the topic's plan or --plan")
    .option('--plan <file.json>', 'plan: {"stages":[{"name","scope":{k:v},"bake":"10m"},…],"health":{…}} (default: the topic\'s plan)')
    .action(async (topic: string, versionArg: string, o: { plan?: string }, cmd: Command) => {
      const g = globals(cmd);
      const version = parseVersion(versionArg);
      let plan: ReturnType<typeof parsePlan> | undefined;
      if (o.plan !== undefined) {
        const path = resolve(o.plan);
        const textPlan = await readFile(path, 'utf8').catch((e: unknown) => {
          throw QuireError.invalid('plan', `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
        });
        plan = parsePlan(textPlan);
      }
      const run = await withPublisher(g, (pub) => pub.startRollout(topic, version, plan));
      if (g.json) return json(run);
      await out(runDetails(run, Date.now()));
    });

  const controls: Array<[RolloutControl, string]> = [
    ['pause', 'pause a running run (--reason required)'],
    ['resume', 'resume a paused run (the bake time starts again)'],
    ['advance', 'release the next stage now'],
    ['abort', 'stop a run and withdraw the version from every scope it reached (--reason required)'],
  ];
  for (const [action, description] of controls) {
    rollout
      .command(`${action} <topic> <runId>`)
      .description(description)
      .option('--reason <text>', 'why (recorded in the audit log)')
      .action(async (topic: string, runId: string, o: { reason?: string }, cmd: Command) => {
        const g = globals(cmd);
        if (action === 'pause' || action === 'abort') requireReason(o.reason, action);
        const run = await withPublisher(g, (pub) => pub.controlRollout(topic, runId, action, o.reason));
        if (g.json) return json(run);
        await out(runDetails(run, Date.now()));
      });
  }

  rollout
    .command('status <topic> [runId]')
    .description("a run's stages, their state and the time until the next one (default: the newest active run, else the newest)")
    .action(async (topic: string, runId: string | undefined, _o: unknown, cmd: Command) => {
      const g = globals(cmd);
      const run = await withPublisher(g, async (pub) => {
        if (runId !== undefined) return pub.getRollout(topic, runId);
        const runs = await pub.listRollouts(topic);
        const chosen = runs.find((r) => r.status === 'running' || r.status === 'paused') ?? runs[0];
        if (chosen === undefined) throw new QuireError(Code.NOT_FOUND, `topic ${topic} has no rollout runs`, { field: 'runId' });
        return chosen;
      });
      if (g.json) return json(run);
      await out(runDetails(run, Date.now()));
    });

  // ── audit ───────────────────────────────────────────────────────────────
  program
    .command('audit')
    .description('the audit log, newest first')
    .option('--topic <name>', 'only this topic')
    .option('--actor <name>', 'only this actor')
    .option('--action <action>', 'only this action (publish, release, pin, unpin, rollback, rollout.start, …)')
    .option('--since <time>', 'from this time: a duration ago (90m, 2d) or an ISO date/time')
    .option('--until <time>', 'before this time: a duration ago or an ISO date/time')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (o: { topic?: string; actor?: string; action?: string; since?: string; until?: string; limit: string }, cmd: Command) => {
      const g = globals(cmd);
      const limit = parseCount(o.limit, 'limit');
      const now = Date.now();
      const page = await withPublisher(g, (pub) =>
        pub.listAudit({
          limit,
          ...(o.topic === undefined ? {} : { topic: o.topic }),
          ...(o.actor === undefined ? {} : { actor: o.actor }),
          ...(o.action === undefined ? {} : { action: o.action }),
          ...(o.since === undefined ? {} : { since: parseTime(o.since, 'since', now) }),
          ...(o.until === undefined ? {} : { until: parseTime(o.until, 'until', now) }),
        }),
      );
      if (g.json) return json(page.items);
      await out(auditTable(page.items));
      if (page.next !== undefined) await err(`quire: more entries than --limit ${limit}\n`);
    });
}

/** The version a rollback moved away from: the service records it in the rollback's audit entry. */
async function rollbackSource(pub: Publisher, topic: string, pin: PinInfo): Promise<number | undefined> {
  try {
    const page = await pub.listAudit({ topic, action: 'rollback', limit: 20 });
    const entry = page.items.find((e) => e.details['pinId'] === pin.pinId);
    const from = entry?.details['from'];
    return typeof from === 'number' ? from : undefined;
  } catch {
    return undefined; // the rollback itself succeeded; only the "from" is unknown
  }
}

function pinTable(pins: readonly PinInfo[], history: boolean): string {
  const header = ['SCOPE', 'VERSION', 'PINNED', 'BY', 'REASON'];
  if (history) header.splice(4, 0, 'ENDED');
  return table(
    header,
    pins.map((p) => {
      const row = [scopeText(p.scope), `v${p.version}`, formatTime(p.pinnedAt), p.pinnedBy || '-', p.reason || '-'];
      if (history) row.splice(4, 0, p.unpinnedAt === undefined ? 'active' : `${formatTime(p.unpinnedAt)}${p.unpinnedBy === undefined ? '' : ` by ${p.unpinnedBy}`}`);
      return row;
    }),
  );
}

/** Each stage's state: released (or withdrawn after an abort), next (and when), paused, pending. */
export function stageState(run: RolloutRunInfo, i: number, now: number): string {
  const stopped = run.status === 'aborted' || run.status === 'rolled_back';
  if (i <= run.stageIndex) return stopped ? 'withdrawn' : 'released';
  if (stopped) return 'cancelled';
  if (i !== run.stageIndex + 1) return 'pending';
  if (run.status === 'paused') return 'next (paused)';
  if (run.nextStageAt === undefined) return 'pending';
  const left = run.nextStageAt - now;
  return left <= 0 ? 'next, due now' : `next in ${formatSpan(left)}`;
}

export function runDetails(run: RolloutRunInfo, now: number): string {
  const total = run.plan.stages.length;
  const head = [
    `run ${run.runId}: ${run.topic} v${run.version}  ${run.status}  stage ${run.stageIndex + 1}/${total}`,
    `started ${formatTime(run.createdAt)} by ${run.startedBy || '-'}${run.reason === undefined ? '' : `; reason: ${run.reason}`}`,
  ];
  if (run.status === 'running' && run.nextStageAt !== undefined) {
    const left = run.nextStageAt - now;
    head.push(`next stage ${run.stageIndex + 2} ${left <= 0 ? 'is due now' : `in ${formatSpan(left)}`} (${formatTime(run.nextStageAt)})`);
  }
  const rows = run.plan.stages.map((st, i) => [String(i + 1), st.name ?? '-', scopeText(st.scope), st.bakeMs === 0 ? '0s' : formatDuration(st.bakeMs), stageState(run, i, now)]);
  return `${head.join('\n')}\n${table(['STAGE', 'NAME', 'SCOPE', 'BAKE', 'STATE'], rows)}`;
}

function auditDetails(d: Record<string, unknown>): string {
  const parts = Object.entries(d).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return parts.length === 0 ? '-' : parts.join(' ');
}

function auditTable(entries: readonly AuditEntryInfo[]): string {
  return table(
    ['TIME', 'ACTOR', 'ACTION', 'TOPIC', 'REASON', 'DETAILS'],
    entries.map((e) => [formatTime(e.at), e.actor || '-', e.action, e.topic ?? '-', e.reason ?? '-', auditDetails(e.details)]),
  );
}

/** An S3-stored version that could not be read while no S3 access is configured: say how to configure it. */
function s3Hint(e: unknown, v: VersionInfo, g: Globals): unknown {
  if (!(e instanceof QuireError) || v.pointer.kind !== 's3' || Object.keys(g.s3).length > 0) return e;
  return new QuireError(e.code, `${e.message}; give --s3-regions (or QUIRE_S3_REGIONS) to read S3-stored versions`, {
    ...(e.field === undefined ? {} : { field: e.field }),
    cause: e,
  });
}

/** The version the consume service hands this identity now (pins, releases, consistency), verified. */
async function latestFor(g: Globals, topic: string, identity: Record<string, string> & { application: string }): Promise<{ bytes: Uint8Array; descriptor: VersionInfo }> {
  const c = createConsumer({ endpoints: g.consume, ...withToken(g), ...withKeyring(g), identity, s3: g.s3 });
  const sub = c.subscribe(topic);
  let failure: QuireError | undefined;
  sub.on('error', (e) => (failure ??= e));
  try {
    await c.ready();
  } finally {
    await c.close();
  }
  const descriptor = sub.descriptor();
  if (descriptor === undefined) {
    throw failure ?? new QuireError(Code.NOT_FOUND, `no version of ${topic} applies to ${formatAttributes(identity)}`, { field: 'as' });
  }
  if (failure !== undefined) await err(`quire: warning: ${failure.message}; using v${descriptor.version}\n`);
  return { bytes: sub.current(), descriptor };
}

function watchLine(v: VersionInfo): string {
  return `v${v.version}  ${formatTime(v.createdAt)}  ${formatBytes(v.size)}  ${formatAttributes(v.metadata)}\n`;
}

/** Codes that end a watch even after it started (the rest are reported and retried by the SDK). */
const WATCH_FATAL: ReadonlySet<Code> = new Set([Code.NOT_FOUND, Code.PERMISSION_DENIED, Code.UNAUTHENTICATED, Code.INVALID_ARGUMENT]);

async function watch(g: Globals, topic: string, identity: Record<string, string> & { application: string }, once: boolean, current: boolean): Promise<void> {
  const c: Consumer = createConsumer({ endpoints: g.consume, ...withToken(g), ...withKeyring(g), identity, s3: g.s3, longPoll: { waitMs: WATCH_WAIT_MS } });
  const sub = c.subscribe(topic);
  let started = false;
  let startFailure: QuireError | undefined;
  let lastWarning = '';
  const print = (v: VersionInfo): Promise<void> => (g.json ? json(v) : out(watchLine(v)));

  await new Promise<void>((resolveWatch, rejectWatch) => {
    let done = false;
    const finish = (failure?: QuireError): void => {
      if (done) return;
      done = true;
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, stop);
      void c.close().then(() => (failure === undefined ? resolveWatch() : rejectWatch(failure)));
    };
    const stop = (): void => finish();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);

    sub.on('update', (e) => {
      if (!started || done) return;
      void print(e.descriptor).then(() => {
        if (once) finish();
      }, (e2: unknown) => finish(QuireError.from(e2)));
    });
    sub.on('error', (e) => {
      if (!started) {
        startFailure ??= e;
        return;
      }
      if (WATCH_FATAL.has(e.code)) return finish(e);
      // Transient (the SDK retries with backoff) or one bad version (the old one stays): say so once.
      const text = `quire: warning: ${e.message}${RETRYABLE_CODES.has(e.code) ? ' (retrying)' : ''}\n`;
      if (text !== lastWarning) void err(text);
      lastWarning = text;
    });

    c.ready().then(async () => {
      if (done) return;
      if (startFailure !== undefined) return finish(startFailure);
      started = true;
      const v = sub.descriptor();
      await err(`quire: watching ${topic} as ${formatAttributes(identity)}; current version ${v === undefined ? 'none' : `v${v.version}`} (Ctrl-C stops)\n`);
      if (current && v !== undefined) {
        await print(v);
        if (once) finish();
      }
    }, (e: unknown) => finish(QuireError.from(e)));
  });
}

/** Parse and run; returns the exit status. Errors are printed here, once. */
export async function run(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  let asJson = argv.includes('--json');
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return EXIT.OK;
      // Help shown because a command was missing: already printed; a usage error all the same.
      if (e.code === 'commander.help' || e.code === 'commander.executeSubCommandAsync') return EXIT.USAGE;
      const usage = new QuireError(Code.INVALID_ARGUMENT, `${e.message.replace(/^error: /, '')} (see quire --help)`);
      await err(`${asJson ? errorJson(usage) : formatError(usage)}\n`);
      return EXIT.USAGE;
    }
    asJson = asJson || program.opts<{ json?: boolean }>().json === true;
    await err(`${asJson ? errorJson(e) : formatError(e)}\n`);
    return exitCodeOf(e);
  }
}

