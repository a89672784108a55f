/**
 * The consumer's Prometheus metrics (prom-client), opt-in: the app passes its `Registry`
 * (`metrics: { registry }`) or asks for one (`metrics: true`) and reads it from
 * `consumer.metrics`. Without the option nothing is registered anywhere. One consumer per
 * registry (the names are fixed); `close()` unregisters them.
 *
 * | metric | type | labels | meaning |
 * | --- | --- | --- | --- |
 * | `quire_client_poll_failures_total` | counter | `code` | polls that failed after their retries |
 * | `quire_client_staleness_seconds` | gauge | `topic` | seconds since the consume service last confirmed this topic (a successful poll carrying it); counted from the consumer's start until the first one |
 * | `quire_client_fallback_active` | gauge | | 1 while the consumer runs on the S3 fallback snapshots, else 0 |
 * | `quire_client_applied_version` | gauge | `topic` | version `current()` holds (0 = none) |
 * | `quire_client_apply_failures_total` | counter | `topic` | updates refused (download, checksum, decode) |
 * | `quire_client_download_failures_total` | counter | `region`, `reason` | S3 reads that failed in one region (`reason`: `corrupt` or `unavailable`), whatever the next region did |
 * | `quire_client_cache_loads_total` | counter | `result` | disk cache reads at start: `applied`, `corrupt` |
 */
import { Counter, Gauge, Registry } from 'prom-client';

/** The metric names (fixed: one consumer per registry). */
export const NAMES = {
  pollFailures: 'quire_client_poll_failures_total',
  staleness: 'quire_client_staleness_seconds',
  fallbackActive: 'quire_client_fallback_active',
  appliedVersion: 'quire_client_applied_version',
  applyFailures: 'quire_client_apply_failures_total',
  downloadFailures: 'quire_client_download_failures_total',
  cacheLoads: 'quire_client_cache_loads_total',
} as const;

export interface MetricsOptions {
  /** Register in this registry (default: a new one, at `consumer.metrics`). */
  registry?: Registry;
}

export class ConsumerMetrics {
  readonly registry: Registry;
  readonly pollFailures: Counter<'code'>;
  readonly staleness: Gauge<'topic'>;
  readonly fallbackActive: Gauge;
  readonly appliedVersion: Gauge<'topic'>;
  readonly applyFailures: Counter<'topic'>;
  readonly downloadFailures: Counter<'region' | 'reason'>;
  readonly cacheLoads: Counter<'result'>;
  /** When the service last confirmed each topic (ms since the epoch). */
  readonly #confirmedAt = new Map<string, number>();
  readonly #startedAt = Date.now();

  constructor(options: MetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    this.pollFailures = new Counter({
      name: NAMES.pollFailures,
      help: 'Polls of the consume service that failed after their retries',
      labelNames: ['code'],
      registers,
    });
    const confirmedAt = this.#confirmedAt;
    const startedAt = this.#startedAt;
    this.staleness = new Gauge({
      name: NAMES.staleness,
      help: 'Seconds since the consume service last confirmed the topic',
      labelNames: ['topic'],
      registers,
      collect() {
        const now = Date.now();
        for (const [topic, at] of confirmedAt) this.set({ topic }, (now - (at || startedAt)) / 1000);
      },
    });
    this.fallbackActive = new Gauge({
      name: NAMES.fallbackActive,
      help: '1 while the consumer runs on the S3 fallback snapshots',
      registers,
    });
    this.appliedVersion = new Gauge({
      name: NAMES.appliedVersion,
      help: 'Version each subscription holds (0 = none)',
      labelNames: ['topic'],
      registers,
    });
    this.applyFailures = new Counter({
      name: NAMES.applyFailures,
      help: 'Updates refused (download, checksum or decode failed); the old value stayed',
      labelNames: ['topic'],
      registers,
    });
    this.downloadFailures = new Counter({
      name: NAMES.downloadFailures,
      help: 'S3 reads that failed in one region (reason corrupt or unavailable)',
      labelNames: ['region', 'reason'],
      registers,
    });
    this.cacheLoads = new Counter({
      name: NAMES.cacheLoads,
      help: 'Disk cache reads at start by result (applied, corrupt)',
      labelNames: ['result'],
      registers,
    });
    this.fallbackActive.set(0);
  }

  track(topic: string): void {
    if (!this.#confirmedAt.has(topic)) this.#confirmedAt.set(topic, 0);
    this.appliedVersion.set({ topic }, 0);
  }

  confirmed(topics: Iterable<string>): void {
    const now = Date.now();
    for (const t of topics) this.#confirmedAt.set(t, now);
  }

  close(): void {
    for (const name of Object.values(NAMES)) this.registry.removeSingleMetric(name);
  }
}
