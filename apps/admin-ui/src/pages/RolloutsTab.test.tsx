// The rollout card rendered (server-side, no browser): stage states and the countdown to
// the next stage on a fixed clock, the reason a run stopped itself, and which controls show.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { renderToStaticMarkup } from 'react-dom/server';
import { MemoryRouter } from 'react-router';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RolloutPlan } from '@quire/core';
import type { TopicState } from '../api.ts';
import type { RunView } from '../lib/countdown.ts';
import { RolloutsTab } from './RolloutsTab.tsx';

const NOW = Date.UTC(2026, 10, 25, 7, 0, 0);
const plan: RolloutPlan = {
  stages: [
    { name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 },
    { name: 'everyone', scope: {}, bakeMs: 600_000 },
  ],
};

function state(runs: RunView[]): TopicState {
  return {
    topic: { name: 't', owner: 'o', description: '', retention: {}, inlineThresholdBytes: 1024, rolloutPlan: plan, createdAt: NOW, updatedAt: NOW, revision: 2, headVersion: 3 },
    pins: [],
    pinHistory: [],
    releases: [],
    runs,
    rollback: { refused: 'nothing' },
  };
}
function run(over: Partial<RunView>): RunView {
  return { topic: 't', runId: 'r1', version: 3, plan, status: 'running', stageIndex: 0, stageReleasedAt: NOW - 5000, createdAt: NOW - 5000, updatedAt: NOW - 5000, startedBy: 'ops', revision: 1, ...over };
}
function render(runs: RunView[]): string {
  return renderToStaticMarkup(
    <QueryClientProvider client={new QueryClient()}>
      <MemoryRouter>
        <RolloutsTab name="t" state={state(runs)} />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOW);
});
afterEach(() => vi.useRealTimers());

describe('RolloutsTab', () => {
  it('shows the current stage, the next one with its countdown, and the controls of a running run', () => {
    const html = render([run({ nextStageAt: NOW + 245_000 })]);
    expect(html).toMatch(/data-state="current".*canary.*released · baking/);
    expect(html).toMatch(/data-state="next".*everyone.*in 4m 05s/);
    expect(html).toContain('Pause');
    expect(html).toContain('Advance now');
    expect(html).toContain('Abort');
    expect(html).not.toContain('Resume');
  });

  it('shows why a run paused itself, with Resume instead of Pause and no countdown', () => {
    const html = render([run({ status: 'paused', pausedAt: NOW - 1000, reason: 'health gate: 3 of 10 instances failed to apply v3', nextStageAt: NOW + 1000 })]);
    expect(html).toContain('Paused: health gate: 3 of 10 instances failed to apply v3');
    expect(html).toContain('Resume');
    expect(html).toContain('waiting (paused)');
    expect(html).not.toMatch(/in \d+s/);
  });

  it('a finished run has no controls; an aborted one shows its stages withdrawn', () => {
    const done = render([run({ status: 'completed', stageIndex: 1 })]);
    expect(done).not.toContain('Advance now');
    const aborted = render([run({ status: 'aborted', stageIndex: 0, reason: 'bad rows' })]);
    expect(aborted).toMatch(/data-state="withdrawn"/);
    expect(aborted).toContain('Aborted: bad rows');
  });
});
