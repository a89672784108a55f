/**
 * The Prometheus metrics of a Quire service (prom-client), one registry per service
 * instance (two services in one test process do not mix their series). Every series is
 * named here, in one place; the README lists them. Gauges that mirror state someone else
 * holds (held long-polls, cache age, leadership, rollouts) read it at scrape time
 * through `track*` callbacks instead of being pushed.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type ServiceName = 'publish' | 'consume';

/** A value read at scrape time; `undefined` leaves the series out of this scrape. */
export type Probe = () => number | undefined | Promise<number | undefined>;

export interface QuireMetrics {
  readonly service: ServiceName;
  readonly registry: Registry;
  /** Failed calls of the metadata store (adapter: cassandra | embedded) and of the blob store (adapter: s3 | fs). */
  readonly storeErrors: Counter<'adapter' | 'operation' | 'code'>;
  readonly blobErrors: Counter<'adapter' | 'operation' | 'code'>;
  /** REST requests, by route pattern (not the raw URL: bounded cardinality). */
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  /** gRPC calls ended, by full method and status code name; unary calls' durations (`grpcCallMetrics`). */
  readonly grpcCalls: Counter<'method' | 'code'>;
  readonly grpcDuration: Histogram<'method'>;
  /** 1 when the last readiness check passed; per check: 1 up, 0.5 degraded, 0 down. */
  readonly ready: Gauge;
  readonly readinessCheck: Gauge<'check'>;
  /** Register a gauge whose value is read at scrape time. */
  gauge(name: string, help: string, probe: Probe): void;
  /** Register a gauge with one label whose values are read at scrape time. */
  labelledGauge<L extends string>(name: string, help: string, label: L, probe: () => Promise<Record<string, number>> | Record<string, number>): void;
  /** The text exposition (what `/metrics` answers) and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

// Latency buckets (seconds): publishes go from a few ms (inline) to minutes (GB uploads);
// long-polls are held up to their wait (tens of seconds).
const PUBLISH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const POLL_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createMetrics(service: ServiceName): QuireMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const metrics: QuireMetrics = {
    service,
    registry,
    storeErrors: new Counter({
      name: 'quire_metadata_store_errors_total',
      help: 'Metadata store calls that failed for a reason other than the answer itself (unreachable, timeout, internal), by adapter, operation and code',
      labelNames: ['adapter', 'operation', 'code'],
      registers,
    }),
    blobErrors: new Counter({
      name: 'quire_blob_store_errors_total',
      help: 'Blob store (S3) calls that failed for a reason other than the answer itself, by adapter, operation and code',
      labelNames: ['adapter', 'operation', 'code'],
      registers,
    }),
    httpRequests: new Counter({ name: 'quire_http_requests_total', help: 'REST requests answered, by method, route and status', labelNames: ['method', 'route', 'status'], registers }),
    httpDuration: new Histogram({ name: 'quire_http_request_duration_seconds', help: 'REST request duration, by method and route', labelNames: ['method', 'route'], buckets: HTTP_BUCKETS, registers }),
    grpcCalls: new Counter({
      name: 'quire_grpc_calls_total',
      help: 'gRPC calls ended, by method (/package.Service/Method) and status code (OK, NOT_FOUND, ...); a stream counts once, when it ends',
      labelNames: ['method', 'code'],
      registers,
    }),
    grpcDuration: new Histogram({ name: 'quire_grpc_call_duration_seconds', help: 'Unary gRPC call duration, by method (streams are not timed: they last as long as their client)', labelNames: ['method'], buckets: HTTP_BUCKETS, registers }),
    ready: new Gauge({ name: 'quire_ready', help: '1 when the last readiness check passed, else 0', registers }),
    readinessCheck: new Gauge({ name: 'quire_readiness_check', help: 'Last readiness check per dependency: 1 up, 0.5 degraded, 0 down', labelNames: ['check'], registers }),
    gauge(name, help, probe) {
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const v = await probe();
          if (v === undefined) this.reset();
          else this.set(v);
        },
      });
    },
    labelledGauge(name, help, label, probe) {
      new Gauge({
        name,
        help,
        labelNames: [label],
        registers,
        async collect() {
          let values: Record<string, number>;
          try {
            values = await probe();
          } catch {
            return; // keep the last values: a scrape must not fail because the store did
          }
          this.reset();
          for (const [k, v] of Object.entries(values)) this.set({ [label]: k } as Partial<Record<typeof label, string>>, v);
        },
      });
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
  return metrics;
}

/** The publish service's own series (created by `instrumentPublishes`). */
export function publishMetrics(m: QuireMetrics) {
  const registers = [m.registry];
  return {
    /** Publishes finished, by outcome: created (a new version), replayed (same publishId), failed. */
    publishes: new Counter({ name: 'quire_publishes_total', help: 'Publishes finished, by outcome (created, replayed, failed)', labelNames: ['outcome'], registers }),
    publishDuration: new Histogram({
      name: 'quire_publish_duration_seconds',
      help: 'Time to publish a version (upload, commit, releases), by outcome',
      labelNames: ['outcome'],
      buckets: PUBLISH_BUCKETS,
      registers,
    }),
    /** Payload bytes of the versions created. */
    publishBytes: new Counter({ name: 'quire_publish_bytes_total', help: 'Payload bytes of the versions created', registers }),
  };
}

/** The consume service's poll series (created by `instrumentPolls`). */
export function pollMetrics(m: QuireMetrics) {
  const registers = [m.registry];
  return {
    /** Polls answered, by kind (poll = answer at once, long = may be held) and outcome. */
    polls: new Counter({ name: 'quire_polls_total', help: 'Polls answered, by kind (poll, long) and outcome (ok, failed)', labelNames: ['kind', 'outcome'], registers }),
    pollDuration: new Histogram({ name: 'quire_poll_duration_seconds', help: 'Time to answer a poll (long-polls include the wait)', labelNames: ['kind'], buckets: POLL_BUCKETS, registers }),
    /** Polls being evaluated or held right now. */
    pollsInFlight: new Gauge({ name: 'quire_polls_in_flight', help: 'Polls being evaluated or held now, by kind (poll, long)', labelNames: ['kind'], registers }),
    /** Version updates handed out in poll answers. */
    pollUpdates: new Counter({ name: 'quire_poll_updates_total', help: 'Version updates handed out in poll answers', registers }),
  };
}

/** Consistency checks that found a version not whole, by reason (created by `instrumentConsistency`). */
export function consistencyMetrics(m: QuireMetrics) {
  return new Counter({
    name: 'quire_consistency_check_failures_total',
    help: 'Consistency checks that found a version not whole (not handed out), by reason',
    labelNames: ['reason'],
    registers: [m.registry],
  });
}
