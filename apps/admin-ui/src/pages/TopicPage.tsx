/** A topic: header with its pin (clearly, while it lasts), roll back, and tabs. The tab is in the URL. */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, NavLink, useParams } from 'react-router';
import { api, type TopicState } from '../api.ts';
import { ConfirmDialog } from '../components/ConfirmDialog.tsx';
import { Badge, ErrorBox, Spinner } from '../components/ui.tsx';
import { formatAgo, formatTime, scopeLabel } from '../lib/format.ts';
import { FleetTab } from './FleetTab.tsx';
import { PublishTab } from './PublishTab.tsx';
import { RolloutsTab } from './RolloutsTab.tsx';
import { SettingsTab } from './SettingsTab.tsx';
import { VersionsTab } from './VersionsTab.tsx';

const TABS = [
  { id: '', label: 'Versions' },
  { id: 'publish', label: 'Publish' },
  { id: 'rollouts', label: 'Rollouts' },
  { id: 'fleet', label: 'Fleet' },
  { id: 'settings', label: 'Settings' },
] as const;

export function useTopicState(name: string) {
  return useQuery({ queryKey: ['topic', name], queryFn: () => api.topicState(name), refetchInterval: 5000 });
}

/** Refresh everything that depends on a topic after an operator action. */
export function useInvalidateTopic(name: string) {
  const qc = useQueryClient();
  return () => {
    void qc.invalidateQueries({ queryKey: ['topic', name] });
    void qc.invalidateQueries({ queryKey: ['versions', name] });
    void qc.invalidateQueries({ queryKey: ['topics'] });
    void qc.invalidateQueries({ queryKey: ['fleet', name] });
  };
}

function PinBanner({ state, name }: { state: TopicState; name: string }) {
  const [unpinning, setUnpinning] = useState<string | undefined>();
  const invalidate = useInvalidateTopic(name);
  const unpin = useMutation({
    mutationFn: ({ reason, scope }: { reason: string; scope: Record<string, string> }) => api.unpin(name, reason, scope),
    onSuccess: invalidate,
  });
  if (state.pins.length === 0) return null;
  const latest = state.topic.headVersion;
  return (
    <>
      {state.pins.map((p) => (
        <div key={p.pinId} className="pin-banner" role="status" data-testid="pin-banner">
          <svg className="pin-icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
            <path fill="currentColor" d="M16 3l5 5-2 1-3 3 1 5-2 2-4-4-5 5-1-1 5-5-4-4 2-2 5 1 3-3z" />
          </svg>
          <div>
            <strong>
              Pinned to v{p.version}
              {Object.keys(p.scope).length > 0 ? ` for ${scopeLabel(p.scope)}` : ' for the whole fleet'}
            </strong>
            <div className="small">
              by {p.pinnedBy} {formatAgo(p.pinnedAt)} — “{p.reason}”. {latest > p.version ? `Newer versions (up to v${latest}) are held back while the pin lasts.` : ''}
            </div>
          </div>
          <button type="button" className="btn btn-small" onClick={() => setUnpinning(p.pinId)}>
            Unpin
          </button>
          <ConfirmDialog
            open={unpinning === p.pinId}
            title={`Unpin v${p.version}`}
            confirmLabel="Unpin"
            onClose={() => setUnpinning(undefined)}
            onConfirm={(reason) => unpin.mutateAsync({ reason, scope: p.scope })}
          >
            <p>
              Consumers in <strong>{scopeLabel(p.scope)}</strong> stop being held at <strong>v{p.version}</strong> and move to the latest version released to them
              {latest > p.version ? (
                <>
                  {' '}
                  (up to <strong>v{latest}</strong>)
                </>
              ) : null}
              .
            </p>
          </ConfirmDialog>
        </div>
      ))}
    </>
  );
}

function RollbackButton({ state, name }: { state: TopicState; name: string }) {
  const [open, setOpen] = useState(false);
  const invalidate = useInvalidateTopic(name);
  const rb = state.rollback;
  const refused = 'refused' in rb ? rb.refused : undefined;
  return (
    <>
      <button type="button" className="btn btn-danger-outline" onClick={() => setOpen(true)} disabled={refused !== undefined} title={refused ?? 'Pin the last version that was fully rolled out'}>
        ↶ Roll back
      </button>
      {'target' in rb ? (
        <ConfirmDialog
          open={open}
          title="Roll back the whole fleet"
          confirmLabel={`Roll back to v${rb.target}`}
          danger
          onClose={() => setOpen(false)}
          onConfirm={async (reason) => {
            await api.rollback(name, reason);
            invalidate();
          }}
        >
          <p>
            Every consumer of <strong>{name}</strong> now running <strong>v{rb.current}</strong> will get <strong>v{rb.target}</strong> within a poll, the last version that was fully rolled out.
          </p>
          <p className="muted small">This pins the topic to v{rb.target} globally: later publishes are held back until someone unpins.</p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}

export function TopicPage() {
  const { name = '', tab = '' } = useParams();
  const state = useTopicState(name);
  if (state.isPending) return <Spinner label={`Loading ${name}…`} />;
  if (state.isError) return <ErrorBox error={state.error} title={`Could not load ${name}`} onRetry={() => void state.refetch()} />;
  const s = state.data;
  const activeRun = s.runs.find((r) => r.status === 'running' || r.status === 'paused');
  const base = `/topics/${encodeURIComponent(name)}`;
  return (
    <section>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/">Topics</Link> / <span>{name}</span>
      </nav>
      <div className="page-head">
        <div>
          <h1 className="topic-title">
            {name}
            {s.topic.headVersion > 0 ? <Badge kind="latest">latest v{s.topic.headVersion}</Badge> : <Badge kind="neutral">no versions</Badge>}
            {activeRun ? <Badge kind="rolling">v{activeRun.version} {activeRun.status === 'paused' ? 'paused' : 'rolling out'}</Badge> : null}
          </h1>
          <p className="muted">
            {s.topic.description || 'No description.'} · owner <strong>{s.topic.owner}</strong> · created {formatTime(s.topic.createdAt)}
          </p>
        </div>
        <div className="head-actions">
          <Link className="btn btn-primary" to={`${base}/publish`}>
            Publish
          </Link>
          <RollbackButton state={s} name={name} />
        </div>
      </div>
      <PinBanner state={s} name={name} />
      <nav className="tabs" aria-label="Topic sections">
        {TABS.map((t) => (
          <NavLink key={t.id} to={t.id === '' ? base : `${base}/${t.id}`} end className={({ isActive }) => (isActive ? 'tab active' : 'tab')}>
            {t.label}
            {t.id === 'rollouts' && activeRun ? <span className="dot" aria-label="active rollout" /> : null}
          </NavLink>
        ))}
      </nav>
      {tab === '' ? <VersionsTab name={name} state={s} /> : null}
      {tab === 'publish' ? <PublishTab name={name} state={s} /> : null}
      {tab === 'rollouts' ? <RolloutsTab name={name} state={s} /> : null}
      {tab === 'fleet' ? <FleetTab name={name} state={s} /> : null}
      {tab === 'settings' ? <SettingsTab name={name} state={s} /> : null}
      {!TABS.some((t) => t.id === tab) ? <p>No such section. <Link to={base}>Back to versions</Link></p> : null}
    </section>
  );
}
