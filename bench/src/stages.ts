// Where propagation's time goes: per publish, the time from the start of the publish call
// to each stage (the publish call returning, the consume service's stage markers written by
// stage-trace.mjs, the subscribers' SDK receiving the poll answer, their handlers), on the
// one monotonic clock; then, over the
// publishes, the median time of each stage and of each stage's delta from the one before.
import { spread, type Spread } from './stats.ts';

/** One measured publish: topic, version, start (monotonic ns) and what the bench saw itself (ms from start). */
export interface PublishMark {
  topic: string;
  version: number;
  t0: number;
  callMs: number;
  /** First / last poll answer decoded by the subscribers' SDK (before its checks and handlers). */
  firstReceivedMs: number;
  lastReceivedMs: number;
  /** First / last subscriber handler. */
  firstMs: number;
  lastMs: number;
}

/** A line of the consume service's stage trace (see stage-trace.mjs). */
export type StageEvent =
  | { s: 'hint' | 'changed'; topic: string; ns: number }
  | { s: 'answered'; topic: string; version: number; first: number; last: number; count: number; loopFree: number };

export const STAGES = [
  'publish call returned',
  'consume service: first change hint received',
  'consume service: last hint before the reload',
  'consume service: topic reloaded, held polls woken',
  'consume service: first held poll answered',
  'consume service: last held poll answered',
  'consume service: event loop free after the answers',
  'subscribers: first poll answer received by the SDK',
  'first subscriber handler',
  'subscribers: last poll answer received by the SDK',
  'last subscriber handler',
] as const;

export interface StageRow {
  stage: (typeof STAGES)[number];
  /** ms from the start of the publish call, over the publishes. */
  fromStart: Spread;
  /** ms from the stage before (negative: this one came first, e.g. a hint before the call returned). */
  delta: Spread;
  /** Publishes for which the stage was seen. */
  seen: number;
}

/** Each stage of one publish, in ms from its start (NaN when not seen). `until`: where its window ends (the next publish on the topic). */
export function stagesOf(mark: PublishMark, events: readonly StageEvent[], until = Infinity): number[] {
  const inWindow = (ns: number): boolean => ns >= mark.t0 && ns < until;
  const ms = (ns: number | undefined): number => (ns === undefined ? Number.NaN : (ns - mark.t0) / 1e6);
  const mine = events.filter((e) => e.topic === mark.topic);
  const times = (s: 'hint' | 'changed'): number[] =>
    mine.flatMap((e) => (e.s === s && inWindow(e.ns) ? [e.ns] : [])).sort((a, b) => a - b);
  const hints = times('hint');
  const changed = times('changed')[0];
  // The running aggregate's last line for this version is its total.
  let answered: Extract<StageEvent, { s: 'answered' }> | undefined;
  for (const e of mine) if (e.s === 'answered' && e.version === mark.version) answered = e;
  const lastHint = changed === undefined ? undefined : hints.filter((h) => h <= changed).at(-1);
  return [mark.callMs, ms(hints[0]), ms(lastHint), ms(changed), ms(answered?.first), ms(answered?.last), ms(answered?.loopFree), mark.firstReceivedMs, mark.firstMs, mark.lastReceivedMs, mark.lastMs];
}

/** Median [min–max] over the publishes of each stage and of its delta from the stage before. */
export function stageBreakdown(marks: readonly PublishMark[], events: readonly StageEvent[]): StageRow[] {
  const ordered = [...marks].sort((a, b) => a.t0 - b.t0);
  const per = ordered.map((m) => {
    const next = ordered.find((o) => o.topic === m.topic && o.t0 > m.t0);
    return stagesOf(m, events, next?.t0 ?? Infinity);
  });
  return STAGES.map((stage, i) => ({
    stage,
    fromStart: spread(per.map((p) => p[i] as number)),
    delta: spread(per.map((p) => (i === 0 ? (p[0] as number) : (p[i] as number) - (p[i - 1] as number)))),
    seen: per.filter((p) => Number.isFinite(p[i])).length,
  }));
}
