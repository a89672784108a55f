/** Audit log: filter by topic, actor, action and time; filters live in the URL (shareable). */
import { useInfiniteQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api } from '../api.ts';
import { Empty, ErrorBox, Spinner } from '../components/ui.tsx';
import { detailsText } from '../lib/audit.ts';
import { formatShortTime, formatTime } from '../lib/format.ts';

const ACTIONS = [
  'topic.create',
  'topic.update',
  'publish',
  'register',
  'release',
  'pin',
  'unpin',
  'rollback',
  'version.delete',
  'rollout.start',
  'rollout.release',
  'rollout.advance',
  'rollout.pause',
  'rollout.resume',
  'rollout.abort',
  'rollout.rollback',
];

/** "2026-11-25T07:00" (datetime-local, local time) ↔ ms. */
function toMs(local: string | null): number | undefined {
  if (!local) return undefined;
  const ms = new Date(local).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

export function AuditPage() {
  const [params, setParams] = useSearchParams();
  const filters = { topic: params.get('topic') ?? '', actor: params.get('actor') ?? '', action: params.get('action') ?? '', since: params.get('since') ?? '', until: params.get('until') ?? '' };
  const [draft, setDraft] = useState(filters);
  const query = {
    ...(filters.topic ? { topic: filters.topic } : {}),
    ...(filters.actor ? { actor: filters.actor } : {}),
    ...(filters.action ? { action: filters.action } : {}),
    ...(toMs(filters.since) === undefined ? {} : { since: toMs(filters.since) }),
    ...(toMs(filters.until) === undefined ? {} : { until: toMs(filters.until) }),
  };
  const audit = useInfiniteQuery({
    queryKey: ['audit', query],
    queryFn: ({ pageParam }) => api.audit({ ...query, limit: 50, ...(pageParam ? { cursor: pageParam } : {}) }),
    initialPageParam: '' as string,
    getNextPageParam: (last) => last.next,
    refetchInterval: 10_000,
  });
  const apply = (e: React.FormEvent) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(draft)) if (v.trim() !== '') p.set(k, v.trim());
    setParams(p);
  };
  const entries = audit.data?.pages.flatMap((p) => p.entries) ?? [];
  return (
    <section>
      <div className="page-head">
        <div>
          <h1>Audit log</h1>
          <p className="muted">Who did what to which topic, newest first.</p>
        </div>
      </div>
      <form className="filters card" onSubmit={apply} aria-label="Audit filters">
        <div>
          <label htmlFor="af-topic">Topic</label>
          <input id="af-topic" value={draft.topic} onChange={(e) => setDraft({ ...draft, topic: e.target.value })} placeholder="any" />
        </div>
        <div>
          <label htmlFor="af-actor">Actor</label>
          <input id="af-actor" value={draft.actor} onChange={(e) => setDraft({ ...draft, actor: e.target.value })} placeholder="any" />
        </div>
        <div>
          <label htmlFor="af-action">Action</label>
          <input id="af-action" list="af-actions" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.target.value })} placeholder="any" />
          <datalist id="af-actions">
            {ACTIONS.map((a) => (
              <option key={a} value={a} />
            ))}
          </datalist>
        </div>
        <div>
          <label htmlFor="af-since">From</label>
          <input id="af-since" type="datetime-local" value={draft.since} onChange={(e) => setDraft({ ...draft, since: e.target.value })} />
        </div>
        <div>
          <label htmlFor="af-until">Until</label>
          <input id="af-until" type="datetime-local" value={draft.until} onChange={(e) => setDraft({ ...draft, until: e.target.value })} />
        </div>
        <div className="filter-actions">
          <button type="submit" className="btn btn-primary">
            Filter
          </button>
          <button
            type="button"
            className="btn btn-ghost"
            onClick={() => {
              setDraft({ topic: '', actor: '', action: '', since: '', until: '' });
              setParams(new URLSearchParams());
            }}
          >
            Clear
          </button>
        </div>
      </form>
      {audit.isPending ? (
        <Spinner label="Loading the audit log…" />
      ) : audit.isError ? (
        <ErrorBox error={audit.error} title="Could not load the audit log" onRetry={() => void audit.refetch()} />
      ) : entries.length === 0 ? (
        <Empty>No entry matches these filters.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="table audit">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Topic</th>
                <th scope="col">Details</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.id} data-action={e.action}>
                  <td className="nowrap" title={formatTime(e.at)}>
                    {formatShortTime(e.at)}
                  </td>
                  <td>{e.actor}</td>
                  <td>
                    <span className={`action action-${e.action.split('.')[0]}`}>{e.action}</span>
                  </td>
                  <td>{e.topic ? <Link to={`/topics/${encodeURIComponent(e.topic)}`}>{e.topic}</Link> : '—'}</td>
                  <td className="small details">{detailsText(e.details)}</td>
                  <td className="small">{e.reason ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {audit.hasNextPage ? (
        <div className="pager">
          <button type="button" className="btn btn-small" onClick={() => void audit.fetchNextPage()} disabled={audit.isFetchingNextPage}>
            {audit.isFetchingNextPage ? 'Loading…' : 'Load older entries'}
          </button>
        </div>
      ) : null}
    </section>
  );
}
