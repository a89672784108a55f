/** One version: its record, scopes, metadata and a preview of small text / JSON payloads. */
import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { api } from '../api.ts';
import { DownloadLink } from '../components/DownloadLink.tsx';
import { Badge, ErrorBox, Spinner } from '../components/ui.tsx';
import { canonicalJson } from '../lib/diff.ts';
import { formatBytes, formatTime, isTextual, scopeLabel } from '../lib/format.ts';
import { pointerLabel, versionBadges } from './VersionsTab.tsx';
import { useTopicState } from './TopicPage.tsx';

export const PREVIEW_MAX_BYTES = 256 * 1024;

function Preview({ name, version, contentType, size }: { name: string; version: number; contentType: string; size: number }) {
  const textual = isTextual(contentType);
  const data = useQuery({ queryKey: ['data', name, version], queryFn: () => api.dataText(name, version, PREVIEW_MAX_BYTES), enabled: textual, staleTime: Infinity });
  if (!textual) return <p className="muted">No preview for {contentType} content. Download it instead.</p>;
  if (data.isPending) return <Spinner label="Loading the content…" />;
  if (data.isError) return <ErrorBox error={data.error} title="Could not read the content" />;
  const pretty = contentType.includes('json') && !data.data.truncated ? canonicalJson(data.data.text) : undefined;
  return (
    <>
      {data.data.truncated ? <p className="muted small">Showing the first {formatBytes(PREVIEW_MAX_BYTES)} of {formatBytes(size)}.</p> : null}
      <pre className="preview" data-testid="preview" tabIndex={0} aria-label="Content preview">
        {pretty ?? data.data.text}
      </pre>
    </>
  );
}

export function VersionPage() {
  const { name = '', version: vText = '' } = useParams();
  const version = Number(vText);
  const state = useTopicState(name);
  const v = useQuery({ queryKey: ['version', name, version], queryFn: () => api.version(name, version) });
  const base = `/topics/${encodeURIComponent(name)}`;
  return (
    <section>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/">Topics</Link> / <Link to={base}>{name}</Link> / <span>v{vText}</span>
      </nav>
      {v.isPending || state.isPending ? (
        <Spinner />
      ) : v.isError ? (
        <ErrorBox error={v.error} title={`Could not load v${vText}`} />
      ) : state.isError ? (
        <ErrorBox error={state.error} />
      ) : (
        <>
          <div className="page-head">
            <h1 className="topic-title">
              {name} v{version} {versionBadges(v.data.version, state.data)}
            </h1>
            <div className="head-actions">
              {version > 1 ? (
                <Link className="btn" to={`${base}/diff?from=${version - 1}&to=${version}`}>
                  Diff with v{version - 1}
                </Link>
              ) : null}
              {v.data.version.deletedAt === undefined ? (
                <DownloadLink className="btn btn-primary" href={api.dataUrl(name, version)} filename={`${name}-v${version}`}>
                  Download
                </DownloadLink>
              ) : null}
            </div>
          </div>
          <div className="grid-detail">
            <dl className="card kv">
              <dt>Published</dt>
              <dd>{formatTime(v.data.version.createdAt)}</dd>
              <dt>Publisher</dt>
              <dd>{v.data.version.publisher}</dd>
              <dt>Size</dt>
              <dd>{formatBytes(v.data.version.size)}</dd>
              <dt>Content type</dt>
              <dd>
                <code>{v.data.version.contentType}</code>
              </dd>
              <dt>Stored</dt>
              <dd>{pointerLabel(v.data.version)}</dd>
              <dt>SHA-256</dt>
              <dd>
                <code className="hash">{v.data.version.sha256}</code>
              </dd>
              <dt>Scopes</dt>
              <dd>
                {v.data.releases.length === 0 ? <span className="muted">not released</span> : null}
                {v.data.releases.map((r) => (
                  <span key={r.scopeKey} className={r.withdrawnAt === undefined ? 'chip' : 'chip chip-withdrawn'} title={r.withdrawnAt === undefined ? `released by ${r.releasedBy}` : 'withdrawn'}>
                    {scopeLabel(r.scope)}
                  </span>
                ))}
              </dd>
              <dt>Metadata</dt>
              <dd>
                {Object.keys(v.data.version.metadata).length === 0 ? <span className="muted">none</span> : null}
                {Object.entries(v.data.version.metadata).map(([k, val]) => (
                  <span key={k} className="chip chip-meta">
                    {k}={val}
                  </span>
                ))}
              </dd>
              {v.data.version.deletedAt !== undefined ? (
                <>
                  <dt>Deleted</dt>
                  <dd>
                    <Badge kind="deleted">{formatTime(v.data.version.deletedAt)}</Badge>
                  </dd>
                </>
              ) : null}
            </dl>
            <div className="card">
              <h3>Preview</h3>
              {v.data.version.deletedAt !== undefined ? (
                <p className="muted">This version was deleted; its data is gone.</p>
              ) : (
                <Preview name={name} version={version} contentType={v.data.version.contentType} size={v.data.version.size} />
              )}
            </div>
          </div>
        </>
      )}
    </section>
  );
}
