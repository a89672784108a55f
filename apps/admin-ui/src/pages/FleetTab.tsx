/**
 * Fleet propagation, live: instances per version now (and over the last minutes, as they
 * move), the same per scope, and the instances that failed to apply with their error.
 */
import { useQuery } from '@tanstack/react-query';
import { useEffect, useMemo, useState } from 'react';
import { Area, AreaChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { Scope } from '@quire/core';
import { api, type TopicState } from '../api.ts';
import { Empty, ErrorBox, Spinner } from '../components/ui.tsx';
import { aggregateFleet, appendSample, type FleetPoint } from '../lib/fleet.ts';
import { formatAgo, scopeLabel } from '../lib/format.ts';

const PALETTE = ['#4f46e5', '#0ea5e9', '#10b981', '#f59e0b', '#ef4444', '#8b5cf6', '#14b8a6', '#64748b'];
export function versionColor(version: number): string {
  return version === 0 ? '#cbd5e1' : (PALETTE[version % PALETTE.length] as string);
}

function ShareBar({ versions, total }: { versions: { version: number; count: number; share: number }[]; total: number }) {
  if (total === 0) return <div className="sharebar empty-bar">no instances</div>;
  return (
    <div className="sharebar" role="img" aria-label={versions.map((v) => `v${v.version}: ${v.count} of ${total}`).join(', ')}>
      {versions.map((v) => (
        <div key={v.version} className="sharebar-seg" style={{ width: `${v.share * 100}%`, background: versionColor(v.version) }} title={`v${v.version}: ${v.count}/${total}`}>
          {v.share >= 0.12 ? `v${v.version} ${Math.round(v.share * 100)}%` : ''}
        </div>
      ))}
    </div>
  );
}

export function FleetTab({ name, state }: { name: string; state: TopicState }) {
  const fleet = useQuery({ queryKey: ['fleet', name], queryFn: () => api.fleet(name), refetchInterval: 2000 });
  const scopes = useMemo(() => {
    const out: { scope: Scope; label?: string }[] = [];
    for (const [i, s] of (state.topic.rolloutPlan?.stages ?? []).entries()) {
      const name = s.name ?? `stage ${i + 1}`;
      out.push({ scope: s.scope, label: name === scopeLabel(s.scope) ? name : `${name} (${scopeLabel(s.scope)})` });
    }
    for (const p of state.pins) out.push({ scope: p.scope, label: `pinned: ${scopeLabel(p.scope)}` });
    for (const r of state.releases) if (r.withdrawnAt === undefined) out.push({ scope: r.scope });
    out.push({ scope: {}, label: 'global (every instance)' });
    return out;
  }, [state]);
  const summary = useMemo(() => aggregateFleet(fleet.data?.reports ?? [], scopes), [fleet.data, scopes]);
  const [history, setHistory] = useState<FleetPoint[]>([]);
  useEffect(() => {
    if (fleet.data) setHistory((h) => appendSample(h, fleet.data.now, summary));
  }, [fleet.data, summary]);
  const seriesVersions = useMemo(() => [...new Set(history.flatMap((p) => Object.keys(p).filter((k) => k.startsWith('v')).map((k) => Number(k.slice(1)))))].sort((a, b) => a - b), [history]);

  if (fleet.isPending) return <Spinner label="Loading the fleet…" />;
  if (fleet.isError) return <ErrorBox error={fleet.error} title="Could not load the fleet" onRetry={() => void fleet.refetch()} />;
  if (summary.total === 0)
    return <Empty>No consumer has reported on this topic in the last 10 minutes. Instances report the version they run each time they poll.</Empty>;
  return (
    <div className="fleet">
      <div className="stat-row">
        <div className="stat">
          <div className="stat-num" data-testid="fleet-total">
            {summary.total}
          </div>
          <div className="stat-label">instances reporting</div>
        </div>
        {summary.versions.map((v) => (
          <div className="stat" key={v.version} data-testid={`fleet-version-${v.version}`}>
            <div className="stat-num" style={{ color: versionColor(v.version) }}>
              {Math.round(v.share * 100)}%
            </div>
            <div className="stat-label">
              on {v.version === 0 ? 'no version yet' : `v${v.version}`} ({v.count})
            </div>
          </div>
        ))}
        <div className="stat">
          <div className={summary.failures.length > 0 ? 'stat-num bad' : 'stat-num'}>{summary.failures.length}</div>
          <div className="stat-label">failed to apply</div>
        </div>
      </div>

      <section className="card">
        <h3>Instances per version, live</h3>
        <div className="chart" data-testid="fleet-chart">
          <ResponsiveContainer width="100%" height={220}>
            <AreaChart data={history} margin={{ top: 8, right: 16, bottom: 0, left: -16 }}>
              <CartesianGrid strokeDasharray="3 3" stroke="#e2e8f0" />
              <XAxis dataKey="at" type="number" scale="time" domain={['dataMin', 'dataMax']} tickFormatter={(t: number) => new Date(t).toLocaleTimeString()} minTickGap={40} fontSize={11} />
              <YAxis allowDecimals={false} fontSize={11} />
              <Tooltip labelFormatter={(t) => new Date(Number(t)).toLocaleTimeString()} />
              <Legend />
              {seriesVersions.map((v) => (
                <Area key={v} type="stepAfter" dataKey={`v${v}`} name={v === 0 ? 'none' : `v${v}`} stackId="1" stroke={versionColor(v)} fill={versionColor(v)} fillOpacity={0.55} isAnimationActive={false} />
              ))}
            </AreaChart>
          </ResponsiveContainer>
        </div>
      </section>

      <section className="card">
        <h3>Per scope</h3>
        <table className="table compact">
          <thead>
            <tr>
              <th scope="col">Scope</th>
              <th scope="col">Instances</th>
              <th scope="col" className="wide">
                Versions
              </th>
            </tr>
          </thead>
          <tbody>
            {summary.scopes.map((g) => (
              <tr key={g.label} data-testid={`fleet-scope-${g.label}`}>
                <td>{g.label}</td>
                <td className="num">{g.total}</td>
                <td>
                  <ShareBar versions={g.versions} total={g.total} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section className="card">
        <h3>Failed to apply</h3>
        {summary.failures.length === 0 ? (
          <p className="muted">No instance reports a failure.</p>
        ) : (
          <table className="table compact">
            <thead>
              <tr>
                <th scope="col">Instance</th>
                <th scope="col">Identity</th>
                <th scope="col">Runs</th>
                <th scope="col">Failed</th>
                <th scope="col">Error</th>
                <th scope="col">Reported</th>
              </tr>
            </thead>
            <tbody>
              {summary.failures.map((f) => (
                <tr key={f.instance}>
                  <td>
                    <code>{f.instance}</code>
                  </td>
                  <td className="small">{scopeLabel(f.identity)}</td>
                  <td>v{f.version}</td>
                  <td className="bad">v{f.failedVersion}</td>
                  <td className="error-text">{f.error || '—'}</td>
                  <td>{formatAgo(f.reportedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
