/** Version history, paged; select two versions to diff; pin / download / view each. */
import { useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api, type TopicState, type VersionRecord } from '../api.ts';
import { ConfirmDialog } from '../components/ConfirmDialog.tsx';
import { DownloadLink } from '../components/DownloadLink.tsx';
import { Badge, Empty, ErrorBox, Spinner } from '../components/ui.tsx';
import { formatBytes, formatShortTime, formatTime, scopeLabel } from '../lib/format.ts';
import { useInvalidateTopic } from './TopicPage.tsx';

const PAGE = 20;

export function versionBadges(v: VersionRecord, state: TopicState) {
  const out = [];
  if (v.deletedAt !== undefined) out.push(<Badge key="d" kind="deleted">deleted</Badge>);
  if (v.version === state.topic.headVersion) out.push(<Badge key="l" kind="latest">latest</Badge>);
  for (const p of state.pins) if (p.version === v.version) out.push(<Badge key={`p${p.pinId}`} kind="pinned" title={`pinned by ${p.pinnedBy}: ${p.reason}`}>pinned{Object.keys(p.scope).length ? ` (${scopeLabel(p.scope)})` : ''}</Badge>);
  for (const r of state.runs) if (r.version === v.version && (r.status === 'running' || r.status === 'paused')) out.push(<Badge key={`r${r.runId}`} kind="rolling">rolling out</Badge>);
  return out;
}

export function pointerLabel(v: VersionRecord): string {
  return v.pointer.kind === 'inline' ? 'inline' : `S3 · ${v.pointer.locations.map((l) => l.region).join(', ')}`;
}

export function VersionsTab({ name, state }: { name: string; state: TopicState }) {
  const [params, setParams] = useSearchParams();
  const cursor = params.get('cursor') ?? undefined;
  const [history, setHistory] = useState<(string | undefined)[]>([]);
  const [selected, setSelected] = useState<number[]>([]);
  const [pinning, setPinning] = useState<VersionRecord>();
  const navigate = useNavigate();
  const invalidate = useInvalidateTopic(name);
  const versions = useQuery({ queryKey: ['versions', name, cursor], queryFn: () => api.versions(name, PAGE, cursor), refetchInterval: 5000 });
  const pin = useMutation({ mutationFn: ({ version, reason }: { version: number; reason: string }) => api.pin(name, version, reason), onSuccess: invalidate });

  const toggle = (v: number) => setSelected((s) => (s.includes(v) ? s.filter((x) => x !== v) : [...s, v].slice(-2)));
  const go = (next: string | undefined, back: boolean) => {
    const p = new URLSearchParams(params);
    if (next === undefined) p.delete('cursor');
    else p.set('cursor', next);
    setHistory((h) => (back ? h.slice(0, -1) : [...h, cursor]));
    setParams(p);
  };
  const scopesOf = (v: number) => state.releases.filter((r) => r.version === v && r.withdrawnAt === undefined);
  const withdrawnOf = (v: number) => state.releases.filter((r) => r.version === v && r.withdrawnAt !== undefined);
  const [from, to] = [...selected].sort((a, b) => a - b);

  if (versions.isPending) return <Spinner label="Loading versions…" />;
  if (versions.isError) return <ErrorBox error={versions.error} title="Could not load the versions" onRetry={() => void versions.refetch()} />;
  const rows = versions.data.versions;
  if (rows.length === 0 && cursor === undefined)
    return (
      <Empty>
        No versions yet. <Link to={`/topics/${encodeURIComponent(name)}/publish`}>Publish the first one</Link>.
      </Empty>
    );
  return (
    <div>
      <div className="toolbar">
        <span className="muted small">Select two versions to compare them.</span>
        <button
          type="button"
          className="btn btn-small"
          disabled={from === undefined || to === undefined}
          onClick={() => navigate(`/topics/${encodeURIComponent(name)}/diff?from=${from}&to=${to}`)}
        >
          Diff {from !== undefined && to !== undefined ? `v${from} → v${to}` : 'selected'}
        </button>
      </div>
      <div className="table-wrap">
        <table className="table versions">
          <thead>
            <tr>
              <th scope="col">
                <span className="sr-only">Compare</span>
              </th>
              <th scope="col">Version</th>
              <th scope="col">Published</th>
              <th scope="col">Publisher</th>
              <th scope="col">Size</th>
              <th scope="col">Content type</th>
              <th scope="col">Stored</th>
              <th scope="col">Scopes</th>
              <th scope="col">Metadata</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((v) => (
              <tr key={v.version} className={v.deletedAt !== undefined ? 'row-deleted' : undefined} data-testid={`version-row-${v.version}`}>
                <td>
                  <input type="checkbox" aria-label={`Compare v${v.version}`} checked={selected.includes(v.version)} onChange={() => toggle(v.version)} disabled={v.deletedAt !== undefined} />
                </td>
                <td>
                  <Link to={`/topics/${encodeURIComponent(name)}/versions/${v.version}`} className="version-link">
                    v{v.version}
                  </Link>{' '}
                  {versionBadges(v, state)}
                </td>
                <td className="nowrap" title={formatTime(v.createdAt)}>
                  {formatShortTime(v.createdAt)}
                </td>
                <td>{v.publisher}</td>
                <td className="num">{formatBytes(v.size)}</td>
                <td>
                  <code>{v.contentType}</code>
                </td>
                <td>{pointerLabel(v)}</td>
                <td>
                  {scopesOf(v.version).map((r) => (
                    <span key={r.scopeKey} className="chip">
                      {scopeLabel(r.scope)}
                    </span>
                  ))}
                  {withdrawnOf(v.version).map((r) => (
                    <span key={`w${r.scopeKey}`} className="chip chip-withdrawn" title="withdrawn">
                      {scopeLabel(r.scope)}
                    </span>
                  ))}
                  {scopesOf(v.version).length + withdrawnOf(v.version).length === 0 ? <span className="muted">not released</span> : null}
                </td>
                <td>
                  {Object.entries(v.metadata).map(([k, val]) => (
                    <span key={k} className="chip chip-meta">
                      {k}={val}
                    </span>
                  ))}
                </td>
                <td className="row-actions">
                  {v.deletedAt === undefined ? (
                    <>
                      <DownloadLink className="btn btn-small btn-ghost" href={api.dataUrl(name, v.version)} filename={`${name}-v${v.version}`} label={`Download v${v.version}`}>
                        Download
                      </DownloadLink>
                      {!state.pins.some((p) => p.version === v.version && Object.keys(p.scope).length === 0) ? (
                        <button type="button" className="btn btn-small" onClick={() => setPinning(v)} aria-label={`Pin v${v.version}`}>
                          Pin
                        </button>
                      ) : null}
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="pager">
        <button type="button" className="btn btn-small" disabled={cursor === undefined} onClick={() => go(history[history.length - 1], true)}>
          ← Newer
        </button>
        <button type="button" className="btn btn-small" disabled={versions.data.next === undefined} onClick={() => go(versions.data.next, false)}>
          Older →
        </button>
      </div>
      <ConfirmDialog
        open={pinning !== undefined}
        title={`Pin v${pinning?.version ?? ''}`}
        confirmLabel={`Pin v${pinning?.version ?? ''}`}
        onClose={() => setPinning(undefined)}
        onConfirm={(reason) => pin.mutateAsync({ version: (pinning as VersionRecord).version, reason })}
      >
        <p>
          Every consumer of <strong>{name}</strong> will get <strong>v{pinning?.version}</strong> within a poll
          {state.topic.headVersion > (pinning?.version ?? 0) ? (
            <>
              , instead of the latest <strong>v{state.topic.headVersion}</strong>
            </>
          ) : null}
          , and keep it whatever is published later, until someone unpins.
        </p>
        {state.pins.length > 0 ? <p className="muted small">It replaces the current global pin (v{state.pins.find((p) => Object.keys(p.scope).length === 0)?.version}).</p> : null}
      </ConfirmDialog>
    </div>
  );
}
