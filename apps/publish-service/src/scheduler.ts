/**
 * The leader-elected scheduler of the publish service. One replica at a time holds the
 * `scheduler` lease in the metadata store (Cassandra LWT + TTL, a transaction in the
 * embedded store; each change of holder gets a higher fencing epoch). The holder renews
 * every ttl/3 and stops acting as soon as a renewal fails or its own clock passes the
 * lease's expiry; the others try to take the lease every ttl/3, so a dead leader is
 * replaced within about ttl + ttl/3.
 *
 * While it leads, every tick: move each active rollout run one step (`RolloutService.step`,
 * compare-and-set on the run, so a stage is recorded once even if two replicas overlap),
 * write the fallback snapshots of the topics the change feed names, and now and then all
 * snapshots, the retention pass of the publish service (when it offers one) and the
 * orphan sweep (objects of publishes that never committed; `sweep.ts`).
 */
import { systemClock } from '@quire/core';
import type { Clock, Lease, MetadataStore } from '@quire/core';
import type { RolloutService } from './rollouts.ts';
import type { SnapshotWriter } from './snapshots.ts';

export const SCHEDULER_LEASE = 'scheduler';

export interface SchedulerOptions {
  store: MetadataStore;
  rollouts: RolloutService;
  snapshots?: SnapshotWriter;
  /** Retention pass, run every `retentionEveryMs` while leading (the PublishService). */
  retention?: { runRetentionAll(): Promise<unknown> };
  /** Orphan sweep, run every `sweepEveryMs` while leading. */
  sweeper?: { sweep(): Promise<{ deleted: string[]; failures: unknown[] }> };
  /** Orphan sweep period. Default 600000 ms. */
  sweepEveryMs?: number;
  /** Called after each sweep (logs). */
  onSweep?: (result: { deleted: string[]; failures: unknown[] }) => void;
  clock?: Clock;
  /** This replica's id, the lease owner. */
  replicaId: string;
  /** Work period while leading. Default 1000 ms. */
  tickMs?: number;
  /** Lease time to live. Default 15000 ms. */
  leaseTtlMs?: number;
  /** Snapshot of every topic this often (besides the changed ones each tick). Default 60000 ms. */
  snapshotEveryMs?: number;
  /** Retention pass this often. Default 300000 ms. */
  retentionEveryMs?: number;
  onError?: (err: unknown, what: string) => void;
  /** Called when this replica gains or loses the lead (logs). */
  onLeadership?: (leader: boolean, lease: Lease | undefined) => void;
}

export interface SchedulerStatus {
  replicaId: string;
  /** True when this replica holds the lease and acts on it. */
  leader: boolean;
  /** The lease as the store has it (any replica's), if held. */
  holder?: string;
  epoch?: number;
  expiresAt?: number;
}

export class Scheduler {
  readonly #o: Required<Omit<SchedulerOptions, 'snapshots' | 'retention' | 'onLeadership' | 'sweeper' | 'onSweep'>> &
    Pick<SchedulerOptions, 'snapshots' | 'retention' | 'onLeadership' | 'sweeper' | 'onSweep'>;
  #lease: Lease | undefined;
  /** Our own deadline: stop acting at this time on our clock unless renewed. */
  #actUntil = 0;
  #leaseTimer: NodeJS.Timeout | undefined;
  #tickTimer: NodeJS.Timeout | undefined;
  #running = false;
  #inFlight: Promise<void> = Promise.resolve();
  #leaseBusy: Promise<void> = Promise.resolve();
  #lastSnapshotAll = 0;
  #lastRetention = 0;
  #lastSweep = 0;
  #sweeping: Promise<void> | undefined;

  constructor(options: SchedulerOptions) {
    this.#o = {
      clock: systemClock,
      tickMs: 1000,
      leaseTtlMs: 15_000,
      snapshotEveryMs: 60_000,
      retentionEveryMs: 300_000,
      sweepEveryMs: 600_000,
      onError: () => {},
      ...options,
    };
  }

  get replicaId(): string {
    return this.#o.replicaId;
  }

  /** True while this replica holds the lease and its own clock is before the deadline. */
  get isLeader(): boolean {
    return this.#lease !== undefined && this.#o.clock.now() < this.#actUntil;
  }

  get epoch(): number | undefined {
    return this.isLeader ? this.#lease?.epoch : undefined;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const leaseEvery = Math.max(50, Math.floor(this.#o.leaseTtlMs / 3));
    const leaseLoop = (): void => {
      this.#leaseBusy = this.#leaseStep().finally(() => {
        if (this.#running) this.#leaseTimer = setTimeout(leaseLoop, leaseEvery);
      });
    };
    const tickLoop = (): void => {
      this.#inFlight = this.#tick().finally(() => {
        if (this.#running) this.#tickTimer = setTimeout(tickLoop, this.#o.tickMs);
      });
    };
    leaseLoop();
    this.#tickTimer = setTimeout(tickLoop, 0);
  }

  /** Stop the loops, wait for the work in flight, give the lease up. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#leaseTimer);
    clearTimeout(this.#tickTimer);
    await Promise.allSettled([this.#inFlight, this.#leaseBusy, this.#sweeping]);
    const lease = this.#lease;
    this.#drop();
    if (lease !== undefined) await this.#o.store.releaseLease(lease).catch((err: unknown) => this.#o.onError(err, 'releasing the scheduler lease'));
  }

  async status(): Promise<SchedulerStatus> {
    const lease = await this.#o.store.getLease(SCHEDULER_LEASE);
    const out: SchedulerStatus = { replicaId: this.#o.replicaId, leader: this.isLeader };
    if (lease !== undefined) {
      out.holder = lease.owner;
      out.epoch = lease.epoch;
      out.expiresAt = lease.expiresAt;
    }
    return out;
  }

  async #leaseStep(): Promise<void> {
    const { store, clock, leaseTtlMs, replicaId } = this.#o;
    // Our deadline counts from before the request: the store's TTL started no earlier.
    const sentAt = clock.now();
    try {
      if (this.#lease === undefined) {
        const lease = await store.tryAcquireLease(SCHEDULER_LEASE, replicaId, leaseTtlMs);
        if (lease !== undefined && this.#running) {
          this.#lease = lease;
          this.#actUntil = Math.min(sentAt + leaseTtlMs, lease.expiresAt);
          this.#o.snapshots?.resetCursor();
          this.#lastSnapshotAll = 0;
          this.#o.onLeadership?.(true, lease);
        }
        return;
      }
      const renewed = await store.renewLease(this.#lease, leaseTtlMs);
      if (renewed === undefined) {
        this.#drop();
        return;
      }
      this.#lease = renewed;
      this.#actUntil = Math.min(sentAt + leaseTtlMs, renewed.expiresAt);
    } catch (err) {
      this.#o.onError(err, 'scheduler lease');
      // Keep the lease object while our own deadline lasts; the next renewal may work.
      if (this.#lease !== undefined && clock.now() >= this.#actUntil) this.#drop();
    }
  }

  #drop(): void {
    const had = this.#lease;
    this.#lease = undefined;
    this.#actUntil = 0;
    if (had !== undefined) this.#o.onLeadership?.(false, had);
  }

  async #tick(): Promise<void> {
    if (!this.isLeader) return;
    const { store, rollouts, clock } = this.#o;
    const epoch = this.#lease?.epoch;
    try {
      const runs = await store.listActiveRuns();
      for (const run of runs) {
        if (!this.isLeader) return;
        try {
          await rollouts.step(run, epoch === undefined ? { actor: 'scheduler' } : { actor: 'scheduler', epoch });
        } catch (err) {
          this.#o.onError(err, `rollout ${run.topic}/${run.runId}`);
        }
      }
    } catch (err) {
      this.#o.onError(err, 'listing active rollouts');
    }
    const snapshots = this.#o.snapshots;
    if (snapshots !== undefined && this.isLeader) {
      try {
        if (clock.now() - this.#lastSnapshotAll >= this.#o.snapshotEveryMs) {
          await snapshots.writeChanged(); // (re)start the change feed before the full pass
          await snapshots.writeAll();
          this.#lastSnapshotAll = clock.now();
        } else {
          await snapshots.writeChanged();
        }
      } catch (err) {
        this.#o.onError(err, 'writing snapshots');
      }
    }
    const retention = this.#o.retention;
    if (retention !== undefined && this.isLeader) {
      if (clock.now() - this.#lastRetention >= this.#o.retentionEveryMs) {
        this.#lastRetention = clock.now();
        try {
          await retention.runRetentionAll();
        } catch (err) {
          this.#o.onError(err, 'retention');
        }
      }
    }
    // The sweep lists whole buckets: it runs beside the ticks (rollout steps never wait on
    // it), one at a time, and only while leading.
    const sweeper = this.#o.sweeper;
    if (sweeper !== undefined && this.isLeader && this.#sweeping === undefined && clock.now() - this.#lastSweep >= this.#o.sweepEveryMs) {
      this.#lastSweep = clock.now();
      this.#sweeping = sweeper
        .sweep()
        .then(
          (result) => this.#o.onSweep?.(result),
          (err: unknown) => this.#o.onError(err, 'orphan sweep'),
        )
        .finally(() => {
          this.#sweeping = undefined;
        });
    }
  }
}
