// The fleet and diff views rendered (server-side, no browser) from a filled query cache:
// shares per version and per scope, failures with their error; diff rows and summary.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { renderToStaticMarkup } from 'react-dom/server';
import { MemoryRouter, Route, Routes } from 'react-router';
import { describe, expect, it } from 'vitest';
import type { FleetReport } from '@quire/core';
import type { TopicState } from '../api.ts';
import { DiffPage } from './DiffPage.tsx';
import { FleetTab } from './FleetTab.tsx';

const NOW = 1_800_000_000_000;
const state: TopicState = {
  topic: {
    name: 't',
    owner: 'o',
    description: '',
    retention: {},
    inlineThresholdBytes: 1024,
    rolloutPlan: { stages: [{ name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 }, { name: 'everyone', scope: {}, bakeMs: 60_000 }] },
    createdAt: NOW,
    updatedAt: NOW,
    revision: 2,
    headVersion: 3,
  },
  pins: [],
  pinHistory: [],
  releases: [],
  runs: [],
  rollback: { refused: 'nothing' },
};
const report = (instance: string, cluster: string, version: number, extra: Partial<FleetReport> = {}): FleetReport => ({ topic: 't', instance, identity: { cluster, instance }, version, reportedAt: NOW, ...extra });

describe('FleetTab', () => {
  it('shows the share per version, per plan stage, and the instances that failed with their error', () => {
    const qc = new QueryClient();
    qc.setQueryData(['fleet', 't'], {
      now: NOW,
      since: NOW - 600_000,
      reports: [report('c1', 'canary', 3), report('m1', 'main', 2), report('m2', 'main', 2), report('c2', 'canary', 2, { failedVersion: 3, error: 'decode: unknown platform' })],
    });
    const html = renderToStaticMarkup(
      <QueryClientProvider client={qc}>
        <MemoryRouter>
          <FleetTab name="t" state={state} />
        </MemoryRouter>
      </QueryClientProvider>,
    );
    expect(html).toMatch(/data-testid="fleet-total">4</);
    expect(html).toMatch(/data-testid="fleet-version-3".*25%.*on v3 \(1\)/);
    expect(html).toMatch(/data-testid="fleet-version-2".*75%.*on v2 \(3\)/);
    expect(html).toMatch(/canary \(cluster=canary\)<\/td><td class="num">2<\/td>.*v3 50%.*v2 50%/);
    expect(html).toContain('decode: unknown platform');
    expect(html).toMatch(/<code>c2<\/code>/);
  });

  it('says so when no instance reports', () => {
    const qc = new QueryClient();
    qc.setQueryData(['fleet', 't'], { now: NOW, since: NOW, reports: [] });
    const html = renderToStaticMarkup(
      <QueryClientProvider client={qc}>
        <FleetTab name="t" state={state} />
      </QueryClientProvider>,
    );
    expect(html).toContain('No consumer has reported on this topic');
  });
});

describe('DiffPage', () => {
  it('renders the diff of the two versions named in the URL', () => {
    const qc = new QueryClient();
    qc.setQueryData(['difftext', 't', 1], '{"a": 1, "b": [1]}');
    qc.setQueryData(['difftext', 't', 2], '{"b": [1, 2], "a": 1}');
    const html = renderToStaticMarkup(
      <QueryClientProvider client={qc}>
        <MemoryRouter initialEntries={['/topics/t/diff?from=1&to=2']}>
          <Routes>
            <Route path="/topics/:name/diff" element={<DiffPage />} />
          </Routes>
        </MemoryRouter>
      </QueryClientProvider>,
    );
    expect(html).toMatch(/\+2<\/span> <span class="del-text">−1<\/span> lines · compared as JSON/);
    expect(html).toMatch(/diff-row diff-add.*2<\/code>/);
  });
});
