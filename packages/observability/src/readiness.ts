/**
 * Readiness: can this instance do its work now? Each dependency has a probe (the
 * metadata store answers a one-row read; each S3 region answers a HEAD of an absent key,
 * which is "not found", not an error, when S3 is up). A probe that throws or takes longer
 * than `timeoutMs` is down.
 *
 * A check is `required` (down → not ready) or, with `degradedWhile`, tolerated while
 * that returns true: the consume service serves from its cache while the store is down,
 * so its store check is `degraded`, not fatal, as long as the cache is fresh enough.
 *
 * The result feeds `/readyz` (200 or 503 with the checks in the body), the
 * `quire_ready` / `quire_readiness_check` gauges and the gRPC health status
 * (SERVING / NOT_SERVING). A background refresh every `intervalMs` keeps gRPC health
 * current without anyone asking `/readyz`.
 */
import type { BlobStore, MetadataStore } from '@quire/core';
import type { QuireMetrics } from './metrics.ts';

export type CheckStatus = 'up' | 'degraded' | 'down';

export interface ReadinessCheck {
  name: string;
  probe: () => Promise<unknown>;
  /** While this returns true, a failing probe is `degraded` instead of `down` (the instance stays ready). */
  degradedWhile?: () => boolean;
  /** Extra fields for the body (e.g. the cache age). */
  details?: () => Record<string, unknown>;
  /**
   * Checked without a probe: `down` with `reason` when it returns a string. Used for state
   * the service already knows (the cache is stale).
   */
  condition?: () => string | undefined;
}

export interface CheckResult {
  status: CheckStatus;
  error?: string;
  latencyMs?: number;
  [detail: string]: unknown;
}

export interface ReadinessReport {
  ready: boolean;
  status: 'ready' | 'degraded' | 'not_ready';
  checks: Record<string, CheckResult>;
}

export interface ReadinessOptions {
  checks: ReadinessCheck[];
  metrics?: QuireMetrics;
  /** A probe slower than this is down (default 2000 ms). */
  timeoutMs?: number;
  /** Background refresh period (default 5000 ms; 0 = none). */
  intervalMs?: number;
  /** Called with every report (gRPC health uses it). */
  onReport?: (report: ReadinessReport) => void;
}

export class Readiness {
  readonly #o: ReadinessOptions;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<ReadinessReport> | undefined;
  #stopped = false;
  #last: ReadinessReport | undefined;

  constructor(options: ReadinessOptions) {
    this.#o = options;
  }

  /** The last report (undefined before the first check). */
  get last(): ReadinessReport | undefined {
    return this.#last;
  }

  /** Run every check now (concurrent checks share one run). */
  check(): Promise<ReadinessReport> {
    this.#inFlight ??= this.#run().finally(() => (this.#inFlight = undefined));
    return this.#inFlight;
  }

  /** Check now, then every `intervalMs`. */
  start(): void {
    const every = this.#o.intervalMs ?? 5000;
    const tick = (): void => {
      void this.check()
        .catch(() => {})
        .finally(() => {
          if (this.#stopped || every <= 0) return;
          this.#timer = setTimeout(tick, every);
          this.#timer.unref();
        });
    };
    tick();
  }

  /** Stop the background refresh; the instance reports not ready from now on (shutting down). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const report: ReadinessReport = { ready: false, status: 'not_ready', checks: { shutdown: { status: 'down', error: 'shutting down' } } };
    this.#publish(report);
  }

  async #run(): Promise<ReadinessReport> {
    if (this.#stopped) return this.#last ?? { ready: false, status: 'not_ready', checks: {} };
    const timeoutMs = this.#o.timeoutMs ?? 2000;
    const entries = await Promise.all(
      this.#o.checks.map(async (c): Promise<[string, CheckResult]> => {
        const details = c.details?.() ?? {};
        if (c.condition !== undefined) {
          const reason = c.condition();
          return [c.name, reason === undefined ? { status: 'up', ...details } : { status: 'down', error: reason, ...details }];
        }
        const started = performance.now();
        try {
          await withTimeout(c.probe(), timeoutMs);
          return [c.name, { status: 'up', latencyMs: Math.round(performance.now() - started), ...details }];
        } catch (err) {
          const error = err instanceof Error ? err.message : String(err);
          const status: CheckStatus = c.degradedWhile?.() === true ? 'degraded' : 'down';
          return [c.name, { status, error, ...details }];
        }
      }),
    );
    const checks = Object.fromEntries(entries);
    const statuses = entries.map(([, r]) => r.status);
    const ready = !statuses.includes('down');
    const report: ReadinessReport = { ready, status: !ready ? 'not_ready' : statuses.includes('degraded') ? 'degraded' : 'ready', checks };
    if (!this.#stopped) this.#publish(report);
    return report;
  }

  #publish(report: ReadinessReport): void {
    this.#last = report;
    const m = this.#o.metrics;
    if (m !== undefined) {
      m.ready.set(report.ready ? 1 : 0);
      for (const [name, r] of Object.entries(report.checks)) m.readinessCheck.set({ check: name }, r.status === 'up' ? 1 : r.status === 'degraded' ? 0.5 : 0);
    }
    this.#o.onReport?.(report);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** The key every S3 readiness probe HEADs: absent, so a reachable region answers "not found". */
export const PROBE_KEY = '_quire/readiness-probe';

/** The metadata store answers a one-row read. */
export function storeCheck(store: MetadataStore, extra: Partial<ReadinessCheck> = {}): ReadinessCheck {
  return { name: 'metadata_store', probe: () => store.listTopics({ limit: 1 }), ...extra };
}

/** One check per blob region: a HEAD of an absent key (undefined) proves the region answers. */
export function blobChecks(blobs: BlobStore): ReadinessCheck[] {
  return blobs.regions.map((region) => ({ name: `blob_store:${region}`, probe: () => blobs.head(PROBE_KEY, region) }));
}
