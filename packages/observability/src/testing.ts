/**
 * Test helpers (not for production code): read a `/metrics` scrape, call gRPC health and
 * reflection like an operator's tool would, and a TCP proxy a test can cut to make a
 * dependency unreachable without touching the (shared) server behind it.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';

/** One sample of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string;
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `labels`; undefined when there is none. */
export function metricValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return matching.length === 0 ? undefined : matching.reduce((a, s) => a + s.value, 0);
}

/** GET `<httpUrl>/metrics`, parsed. */
export async function scrape(httpUrl: string): Promise<Sample[]> {
  const res = await fetch(`${httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

/** `grpc.health.v1.Health/Check` of `service` ('' = the server): SERVING, NOT_SERVING, … */
export function grpcHealth(address: string, service = ''): Promise<string> {
  const Client = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');
  const client = new Client(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    (client as unknown as Record<string, (req: unknown, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void) => void>).check?.(
      { service },
      (err, res) => {
        client.close();
        if (err) reject(err);
        else resolve(res?.status ?? 'UNKNOWN');
      },
    );
  });
}

/**
 * Ask the server's reflection service (v1) for its services, then for the file defining
 * `symbol`: returns the service names and the serialized FileDescriptorProtos of that
 * answer (as latin1 text, enough to look for a name in them).
 */
export async function grpcReflect(address: string, symbol: string): Promise<{ services: string[]; descriptors: string[] }> {
  const reflectionRoot = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')), 'build/proto');
  const def = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [reflectionRoot], keepCase: true, longs: String, defaults: true, oneofs: true });
  const Ctor = grpc.loadPackageDefinition(def).grpc as unknown as { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  const client = new Ctor.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  try {
    const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, Record<string, unknown>> }).ServerReflectionInfo();
    const answers: Array<Record<string, unknown>> = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (d: Record<string, unknown>) => answers.push(d));
      call.on('end', () => resolve());
      call.on('error', reject);
    });
    call.write({ list_services: '' });
    call.write({ file_containing_symbol: symbol });
    call.end();
    await done;
    const list = answers.find((a) => a.list_services_response !== undefined && a.list_services_response !== null)?.list_services_response as
      | { service: Array<{ name: string }> }
      | undefined;
    const fileAnswer = answers.find((a) => a.file_descriptor_response !== undefined && a.file_descriptor_response !== null)?.file_descriptor_response as
      | { file_descriptor_proto: Buffer[] }
      | undefined;
    const descriptors = (fileAnswer?.file_descriptor_proto ?? []).map((b) => Buffer.from(b).toString('latin1'));
    return { services: (list?.service ?? []).map((s) => s.name), descriptors };
  } finally {
    client.close();
  }
}

export interface TcpProxy {
  /** The port to connect to instead of the target's. */
  port: number;
  /** Stop accepting and cut every open connection (the target looks down). */
  cut(): Promise<void>;
  /** Accept again on the same port (the target is back). */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** A loopback TCP proxy to `host:port`, for making a dependency unreachable in a test. */
export async function startTcpProxy(host: string, port: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const make = (): Server =>
    createServer((client) => {
      const upstream = connect(port, host);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  const listen = (server: Server, on: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(on, '127.0.0.1', () => {
        const a = server.address();
        resolve(typeof a === 'object' && a !== null ? a.port : on);
      });
    });
  let server: Server | undefined = make();
  const local = await listen(server, 0);
  const cut = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    port: local,
    cut,
    async restore() {
      if (server !== undefined) return;
      server = make();
      await listen(server, local);
    },
    close: cut,
  };
}

// ---- OpenAPI -----------------------------------------------------------------------------

/** The subset of an OpenAPI 3.1 document the walker reads. */
export interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }>>;
}

/** Validate `doc` against the OpenAPI schema of its version (@seriousme/openapi-schema-validator). */
export async function validateOpenApi(doc: unknown): Promise<{ valid: boolean; version: string; errors: unknown }> {
  const { Validator } = await import('@seriousme/openapi-schema-validator');
  const validator = new Validator();
  const res = await validator.validate(doc as Record<string, unknown>);
  return { valid: res.valid, version: validator.version, errors: res.errors };
}

/** One request of a walk: `op` is `METHOD /path/{param}` as in the document. */
export interface WalkStep {
  op: string;
  params?: Record<string, string | number>;
  query?: Record<string, string>;
  /** JSON body (sent as application/json). */
  body?: unknown;
  /** Raw body with its content type (instead of `body`). */
  raw?: { contentType: string; data: Uint8Array | string };
  /** The status the request must answer. */
  status: number;
  /** Called with the parsed JSON answer (to pick ids for later steps). */
  then?: (body: unknown) => void | Promise<void>;
  /** Called before the request (to set up state). */
  before?: () => void | Promise<void>;
}

export interface WalkResult {
  op: string;
  status: number;
  contentType: string;
}

/** Every `METHOD /path` of the document. */
export function operationsOf(doc: OpenApiDoc): string[] {
  const out: string[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const m of Object.keys(methods)) if (['get', 'put', 'post', 'patch', 'delete'].includes(m)) out.push(`${m.toUpperCase()} ${path}`);
  }
  return out;
}

/**
 * Send each step to `baseUrl` and check the answer against the document: its status must
 * be one the operation lists, its content type one listed for that status, and a JSON
 * body must validate against the schema listed for it (Ajv, JSON Schema 2020-12 as in
 * OpenAPI 3.1). Throws, naming the operation, on the first mismatch.
 */
export async function walkOpenApi(baseUrl: string, doc: OpenApiDoc, steps: readonly WalkStep[], headers: Record<string, string> = {}): Promise<WalkResult[]> {
  const { Ajv2020 } = await import('ajv/dist/2020.js');
  const ajv = new Ajv2020({ strict: false, allErrors: true, allowUnionTypes: true });
  const results: WalkResult[] = [];
  for (const step of steps) {
    await step.before?.();
    const [method, template] = step.op.split(' ') as [string, string];
    const operation = doc.paths[template]?.[method.toLowerCase()];
    if (operation === undefined) throw new Error(`${step.op}: not in the document`);
    const path = template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
      const v = step.params?.[name];
      if (v === undefined) throw new Error(`${step.op}: no value for path parameter ${name}`);
      return encodeURIComponent(String(v));
    });
    const qs = step.query === undefined ? '' : `?${new URLSearchParams(step.query).toString()}`;
    const init: RequestInit = { method, headers: { ...headers } };
    if (step.raw !== undefined) {
      init.headers = { ...headers, 'content-type': step.raw.contentType };
      init.body = step.raw.data as RequestInit['body'];
    } else if (step.body !== undefined) {
      init.headers = { ...headers, 'content-type': 'application/json' };
      init.body = JSON.stringify(step.body);
    }
    const res = await fetch(`${baseUrl}${path}${qs}`, init);
    const text = Buffer.from(await res.arrayBuffer());
    const where = `${step.op} → ${res.status} ${text.subarray(0, 300).toString('utf8')}`;
    if (res.status !== step.status) throw new Error(`${where}: expected status ${step.status}`);
    const responses = operation.responses ?? {};
    const described = responses[String(res.status)] ?? responses[`${String(res.status)[0]}XX`] ?? responses['default'];
    if (described === undefined) throw new Error(`${where}: status not in the document (${Object.keys(responses).join(', ')})`);
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const content = described.content ?? {};
    const media = content[contentType] ?? content['*/*'] ?? (contentType === '' ? undefined : content['application/octet-stream']);
    if (media === undefined) throw new Error(`${where}: content type "${contentType}" not in the document (${Object.keys(content).join(', ')})`);
    let parsed: unknown;
    if (contentType === 'application/json') {
      parsed = JSON.parse(text.toString('utf8'));
      const validate = ajv.compile(media.schema as object);
      if (!validate(parsed)) throw new Error(`${where}: body does not match the documented schema: ${ajv.errorsText(validate.errors)}`);
    }
    results.push({ op: step.op, status: res.status, contentType });
    await step.then?.(parsed);
  }
  return results;
}
