/** Topics: searchable, sortable list; create a topic. Search and sort live in the URL. */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api, type TopicSummary } from '../api.ts';
import { Badge, Empty, ErrorBox, FieldError, Modal, Spinner, fieldMessage } from '../components/ui.tsx';
import { formatAgo, formatTime } from '../lib/format.ts';

type SortKey = 'name' | 'owner' | 'headVersion' | 'lastPublishAt' | 'pinned' | 'rollout';
const COLUMNS: { key: SortKey; label: string }[] = [
  { key: 'name', label: 'Topic' },
  { key: 'owner', label: 'Owner' },
  { key: 'headVersion', label: 'Latest version' },
  { key: 'lastPublishAt', label: 'Last publish' },
  { key: 'pinned', label: 'Pinned' },
  { key: 'rollout', label: 'Rollout' },
];

function sortValue(t: TopicSummary, key: SortKey): string | number {
  switch (key) {
    case 'name':
      return t.name;
    case 'owner':
      return t.owner.toLowerCase();
    case 'headVersion':
      return t.headVersion;
    case 'lastPublishAt':
      return t.lastPublishAt ?? 0;
    case 'pinned':
      return t.pins.length;
    case 'rollout':
      return t.activeRun ? 1 : 0;
  }
}

function CreateTopicDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const [name, setName] = useState('');
  const [owner, setOwner] = useState('');
  const [description, setDescription] = useState('');
  const qc = useQueryClient();
  const navigate = useNavigate();
  const create = useMutation({
    mutationFn: () => api.createTopic({ name: name.trim(), ...(owner.trim() ? { owner: owner.trim() } : {}), description }),
    onSuccess: (t) => {
      void qc.invalidateQueries({ queryKey: ['topics'] });
      onClose();
      navigate(`/topics/${encodeURIComponent(t.name)}`);
    },
  });
  const nameError = fieldMessage(create.error, 'name');
  const ownerError = fieldMessage(create.error, 'owner');
  const descError = fieldMessage(create.error, 'description');
  const other = create.error && !nameError && !ownerError && !descError ? create.error : undefined;
  return (
    <Modal open={open} title="New topic" onClose={onClose}>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label htmlFor="nt-name">Name</label>
        <input id="nt-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="team.dataset-name" aria-invalid={!!nameError} aria-describedby="nt-name-error" required autoFocus />
        <FieldError id="nt-name-error" message={nameError} />
        <label htmlFor="nt-owner">Owner</label>
        <input id="nt-owner" value={owner} onChange={(e) => setOwner(e.target.value)} placeholder="defaults to you" aria-invalid={!!ownerError} aria-describedby="nt-owner-error" />
        <FieldError id="nt-owner-error" message={ownerError} />
        <label htmlFor="nt-desc">Description</label>
        <textarea id="nt-desc" rows={2} value={description} onChange={(e) => setDescription(e.target.value)} aria-invalid={!!descError} aria-describedby="nt-desc-error" />
        <FieldError id="nt-desc-error" message={descError} />
        {other ? <ErrorBox error={other} title="Could not create the topic" /> : null}
        <div className="actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={create.isPending}>
            {create.isPending ? 'Creating…' : 'Create topic'}
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function TopicsPage() {
  const [params, setParams] = useSearchParams();
  const q = params.get('q') ?? '';
  const sort = (params.get('sort') as SortKey | null) ?? 'name';
  const dir = params.get('dir') === 'desc' ? -1 : 1;
  const [creating, setCreating] = useState(false);
  const topics = useQuery({ queryKey: ['topics'], queryFn: () => api.topics(), refetchInterval: 10_000 });

  const set = (next: Record<string, string | undefined>) => {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(next)) if (v === undefined || v === '') p.delete(k);
    else p.set(k, v);
    setParams(p, { replace: true });
  };
  const needle = q.trim().toLowerCase();
  const rows = (topics.data?.topics ?? [])
    .filter((t) => needle === '' || t.name.toLowerCase().includes(needle) || t.owner.toLowerCase().includes(needle) || t.description.toLowerCase().includes(needle))
    .sort((a, b) => {
      const x = sortValue(a, sort);
      const y = sortValue(b, sort);
      return (x < y ? -1 : x > y ? 1 : a.name < b.name ? -1 : 1) * dir;
    });

  return (
    <section>
      <div className="page-head">
        <div>
          <h1>Topics</h1>
          <p className="muted">Every dataset stream, its latest version and what operators did to it.</p>
        </div>
        <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
          + New topic
        </button>
      </div>
      <div className="toolbar">
        <label htmlFor="topic-search" className="sr-only">
          Search topics
        </label>
        <input id="topic-search" type="search" className="search" placeholder="Search by name, owner or description" value={q} onChange={(e) => set({ q: e.target.value })} />
        {topics.data ? (
          <span className="muted small">
            {rows.length} of {topics.data.topics.length} topics
          </span>
        ) : null}
      </div>
      {topics.isPending ? (
        <Spinner label="Loading topics…" />
      ) : topics.isError ? (
        <ErrorBox error={topics.error} title="Could not load the topics" onRetry={() => void topics.refetch()} />
      ) : rows.length === 0 ? (
        <Empty>{needle ? `No topic matches "${q}".` : 'No topics yet. Create the first one.'}</Empty>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                {COLUMNS.map((c) => (
                  <th key={c.key} aria-sort={sort === c.key ? (dir === 1 ? 'ascending' : 'descending') : 'none'}>
                    <button type="button" className="sort-btn" onClick={() => set({ sort: c.key, dir: sort === c.key && dir === 1 ? 'desc' : undefined })}>
                      {c.label}
                      <span aria-hidden="true" className="sort-mark">
                        {sort === c.key ? (dir === 1 ? '▲' : '▼') : ''}
                      </span>
                    </button>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((t) => (
                <tr key={t.name}>
                  <td>
                    <Link to={`/topics/${encodeURIComponent(t.name)}`} className="topic-link">
                      {t.name}
                    </Link>
                    {t.description ? <div className="muted small clip">{t.description}</div> : null}
                  </td>
                  <td>{t.owner}</td>
                  <td className="num">{t.headVersion === 0 ? <span className="muted">none</span> : `v${t.headVersion}`}</td>
                  <td title={formatTime(t.lastPublishAt)}>{formatAgo(t.lastPublishAt)}</td>
                  <td>{t.pins.length > 0 ? t.pins.map((p) => <Badge key={p.pinId} kind="pinned">pinned v{p.version}</Badge>) : <span className="muted">—</span>}</td>
                  <td>
                    {t.activeRun ? (
                      <Badge kind="rolling">
                        v{t.activeRun.version} {t.activeRun.status === 'paused' ? 'paused' : 'rolling out'} · stage {t.activeRun.stageIndex + 1}/{t.activeRun.plan.stages.length}
                      </Badge>
                    ) : (
                      <span className="muted">—</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <CreateTopicDialog open={creating} onClose={() => setCreating(false)} />
    </section>
  );
}
