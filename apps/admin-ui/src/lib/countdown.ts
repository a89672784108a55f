/**
 * Rollout stages as the UI shows them: each stage's state and when the next one is due,
 * and a countdown text ("4m 05s") that ticks on the client clock.
 */
import type { RolloutRun, RolloutStage } from '@quire/core';

export type StageState = 'released' | 'current' | 'next' | 'pending' | 'withdrawn';

export interface StageView {
  index: number;
  name: string;
  stage: RolloutStage;
  state: StageState;
  /** For the next stage of a running run: when it will be released (ms since the epoch). */
  dueAt?: number;
}

export type RunView = RolloutRun & { nextStageAt?: number };

/** The stages of a run with their state. Stages of an aborted / rolled-back run that were released are shown as withdrawn. */
export function stageViews(run: RunView): StageView[] {
  const stopped = run.status === 'aborted' || run.status === 'rolled_back';
  return run.plan.stages.map((stage, index) => {
    const name = stage.name ?? `stage ${index + 1}`;
    let state: StageState;
    if (index <= run.stageIndex) state = stopped ? 'withdrawn' : index === run.stageIndex && run.status !== 'completed' ? 'current' : 'released';
    else if (index === run.stageIndex + 1 && (run.status === 'running' || run.status === 'paused')) state = 'next';
    else state = 'pending';
    const view: StageView = { index, name, stage, state };
    if (state === 'next' && run.status === 'running' && run.nextStageAt !== undefined) view.dueAt = run.nextStageAt;
    return view;
  });
}

/** "now", "45s", "4m 05s", "2h 03m", "3d 4h": time left until `dueAt`. */
export function formatCountdown(dueAt: number, now: number): string {
  const ms = dueAt - now;
  if (ms <= 0) return 'now';
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** A bake time as a short duration ("0", "10m", "1h 30m"). */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  const rest = s % 60;
  if (m < 60) return rest === 0 ? `${m}m` : `${m}m ${rest}s`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h}h` : `${h}h ${m % 60}m`;
}

/** Parse "90s", "10m", "1h30m", "2h 5m", "0" or a plain number of minutes into ms; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 60_000);
  const re = /(\d+)\s*(ms|s|m|h|d)/g;
  let total = 0;
  let consumed = '';
  for (const m of t.matchAll(re)) {
    const n = Number(m[1]);
    const unit = m[2] as string;
    total += n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as Record<string, number>)[unit]!;
    consumed += m[0];
  }
  if (consumed.replace(/\s/g, '') !== t.replace(/\s/g, '')) return undefined;
  return total;
}
