// 6. Capacity model: from the measured per-process figures, how many consume instances and
// what Cassandra read load a fleet needs, at 30 s polling and with long-poll. Pure: the
// report shows its inputs next to its outputs so every number can be traced.
import type { PollCostResult } from './poll-cost.ts';
import type { ScaleResult } from './scale.ts';

export interface CapacityInputs {
  /** Best measured no-change polls/s of one consume process (REST or gRPC), per topics-per-poll. */
  pollsPerSecond: Record<number, number>;
  /** Topics-per-poll the figure for 7 / 200 topics was taken from. */
  measuredTopics: { small: number; large: number };
  /** Memory per held long-poll (KiB) and held polls measured on one process. */
  heldKiB: number;
  heldMeasured: number;
  /** Time to answer every held poll after a change (ms), at `heldMeasured`. */
  releaseMs: number;
  /** Full refresh of `topics` topics (ms). */
  refreshMs: number;
  topics: number;
  /** Service settings the read load follows from. */
  refreshPeriodMs: number;
  changePollMs: number;
  longPollWaitMs: number;
  pollIntervalMs: number;
  /** Target CPU utilisation of an instance (headroom for bursts and failover). */
  utilisation: number;
}

export interface CapacityRow {
  fleet: number;
  topicsPerInstance: number;
  mode: '30 s polling' | 'long-poll';
  pollsPerSecond: number;
  instances: number;
  /** What sets the instance count. */
  boundBy: 'CPU (poll rate)' | 'held connections' | 'minimum of 2';
  cassandraReadsPerSecond: number;
  /** Long-poll: after a change every consumer re-polls at once; time to absorb that burst. */
  burstSeconds?: number;
}

export interface CapacityResult {
  inputs: CapacityInputs;
  rows: CapacityRow[];
}

export function capacityInputs(poll: PollCostResult | undefined, scale: ScaleResult | undefined, settings: { refreshPeriodMs: number; changePollMs: number; longPollWaitMs: number; pollIntervalMs: number }): CapacityInputs | undefined {
  if (!poll || !scale) return undefined;
  // Best of REST and gRPC at any in-flight level: where the load generator, not the service,
  // was the limit (grpc-js on a starved CPU), the other transport shows what the service does.
  const best = (topics: number): number => Math.max(...poll.rows.filter((r) => r.topics === topics).map((r) => r.quire.rps.median));
  const topicsMeasured = [...new Set(poll.rows.map((r) => r.topics))].sort((a, b) => a - b);
  const small = topicsMeasured[0] as number;
  const large = topicsMeasured.at(-1) as number;
  // Idle RSS after an earlier round still holds its garbage: the lowest idle figure is the baseline.
  const heldKiB = Math.max(0, ((scale.held.quire.rssHeld.median - scale.held.quire.rssIdle.min) * 1024) / scale.held.polls);
  return {
    pollsPerSecond: Object.fromEntries(topicsMeasured.map((t) => [t, best(t)])),
    measuredTopics: { small, large },
    heldKiB,
    heldMeasured: scale.held.polls,
    releaseMs: scale.held.quire.allAnsweredMs.median,
    refreshMs: scale.fullRefresh.median,
    topics: scale.topics,
    ...settings,
    utilisation: 0.5,
  };
}

/** Topics' state stamps listed per read, and the share of topics a full refresh reloads whatever their stamp (ADR 0008, the consume cache's defaults). */
export const STAMP_PAGE = 1000;
export const SWEEP_EVERY = 60;

/**
 * Reads one consume instance makes per second when nothing changes: the change feed, and a
 * full refresh that lists every topic's state stamp (one read per STAMP_PAGE topics) and
 * reloads 1 / SWEEP_EVERY of the topics (3 reads each: releases, pins, versions). A change
 * costs each instance 3 more reads for its topic (not counted: it depends on the publish rate).
 */
export function readsPerInstance(i: CapacityInputs): number {
  const refreshReads = 3 * Math.ceil(i.topics / SWEEP_EVERY) + Math.ceil(i.topics / STAMP_PAGE);
  return 1000 / i.changePollMs + refreshReads / ((i.refreshPeriodMs + Math.max(0, i.refreshMs)) / 1000);
}

export function capacityModel(i: CapacityInputs, fleets = [10_000, 100_000, 1_000_000], topicsPerInstance = [7, 200]): CapacityResult {
  const rows: CapacityRow[] = [];
  const reads = readsPerInstance(i);
  for (const fleet of fleets) {
    for (const k of topicsPerInstance) {
      const cap = (i.pollsPerSecond[k <= i.measuredTopics.small ? i.measuredTopics.small : i.measuredTopics.large] ?? Number.NaN) * i.utilisation;
      // 30 s polling: each consumer polls once per interval.
      {
        const pps = fleet / (i.pollIntervalMs / 1000);
        const cpu = Math.ceil(pps / cap);
        const instances = Math.max(2, cpu);
        rows.push({ fleet, topicsPerInstance: k, mode: '30 s polling', pollsPerSecond: pps, instances, boundBy: instances === cpu ? 'CPU (poll rate)' : 'minimum of 2', cassandraReadsPerSecond: instances * reads });
      }
      // Long-poll: each consumer holds one poll, re-armed every waitMs when nothing changes.
      {
        const pps = fleet / (i.longPollWaitMs / 1000);
        const cpu = Math.ceil(pps / cap);
        const held = Math.ceil(fleet / i.heldMeasured);
        const instances = Math.max(2, cpu, held);
        const boundBy = instances === held ? 'held connections' : instances === cpu ? 'CPU (poll rate)' : 'minimum of 2';
        // After a change to a topic everyone watches: every held poll answers and re-polls at once.
        const burstSeconds = fleet / instances / (cap / i.utilisation) + i.releaseMs / 1000;
        rows.push({ fleet, topicsPerInstance: k, mode: 'long-poll', pollsPerSecond: pps, instances, boundBy, cassandraReadsPerSecond: instances * reads, burstSeconds });
      }
    }
  }
  return { inputs: i, rows };
}
