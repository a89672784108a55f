/** Diff between any two text / JSON versions; the pair is in the URL (?from=&to=). */
import { useQuery } from '@tanstack/react-query';
import { Link, useParams, useSearchParams } from 'react-router';
import { api } from '../api.ts';
import { ErrorBox, Spinner } from '../components/ui.tsx';
import { diffTexts } from '../lib/diff.ts';
import { isTextual } from '../lib/format.ts';

const DIFF_MAX_BYTES = 2 * 1024 * 1024;

function useVersionText(name: string, version: number) {
  return useQuery({
    queryKey: ['difftext', name, version],
    queryFn: async () => {
      const { version: rec } = await api.version(name, version);
      if (rec.deletedAt !== undefined) throw new Error(`v${version} was deleted; its data is gone`);
      if (!isTextual(rec.contentType)) throw new Error(`v${version} is ${rec.contentType}, not text: it cannot be diffed`);
      if (rec.size > DIFF_MAX_BYTES) throw new Error(`v${version} is larger than 2 MiB: download both versions to compare them`);
      return (await api.dataText(name, version, DIFF_MAX_BYTES)).text;
    },
    enabled: Number.isSafeInteger(version) && version > 0,
    staleTime: Infinity,
  });
}

export function DiffPage() {
  const { name = '' } = useParams();
  const [params, setParams] = useSearchParams();
  const from = Number(params.get('from'));
  const to = Number(params.get('to'));
  const a = useVersionText(name, from);
  const b = useVersionText(name, to);
  const base = `/topics/${encodeURIComponent(name)}`;
  const setPair = (key: 'from' | 'to', value: string) => {
    const p = new URLSearchParams(params);
    p.set(key, value);
    setParams(p, { replace: true });
  };
  const result = a.data !== undefined && b.data !== undefined ? diffTexts(a.data, b.data) : undefined;
  return (
    <section>
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/">Topics</Link> / <Link to={base}>{name}</Link> / <span>diff</span>
      </nav>
      <div className="page-head">
        <h1>
          Diff <Link to={`${base}/versions/${from}`}>v{from}</Link> → <Link to={`${base}/versions/${to}`}>v{to}</Link>
        </h1>
        <form className="inline-form" onSubmit={(e) => e.preventDefault()}>
          <label htmlFor="diff-from">From</label>
          <input id="diff-from" type="number" min={1} className="narrow" value={Number.isNaN(from) ? '' : from} onChange={(e) => setPair('from', e.target.value)} />
          <label htmlFor="diff-to">to</label>
          <input id="diff-to" type="number" min={1} className="narrow" value={Number.isNaN(to) ? '' : to} onChange={(e) => setPair('to', e.target.value)} />
        </form>
      </div>
      {a.isError ? <ErrorBox error={a.error} title={`Cannot diff v${from}`} /> : null}
      {b.isError ? <ErrorBox error={b.error} title={`Cannot diff v${to}`} /> : null}
      {(a.isPending || b.isPending) && !a.isError && !b.isError ? <Spinner label="Loading both versions…" /> : null}
      {result ? (
        <div className="card">
          <p className="diff-summary" data-testid="diff-summary">
            <span className="add-text">+{result.added}</span> <span className="del-text">−{result.removed}</span> lines
            {result.json ? ' · compared as JSON (keys sorted, formatting ignored)' : ''}
            {result.added + result.removed === 0 ? ' · the two versions have the same content' : ''}
          </p>
          <div className="diff" role="table" aria-label={`Changes from v${from} to v${to}`}>
            {result.rows.map((r, i) =>
              r.kind === 'skip' ? (
                <div key={i} className="diff-row diff-skip" role="row">
                  <span role="cell">⋯ {r.count} unchanged lines</span>
                </div>
              ) : (
                <div key={i} className={`diff-row diff-${r.kind}`} role="row">
                  <span className="ln" role="cell">
                    {r.oldLine ?? ''}
                  </span>
                  <span className="ln" role="cell">
                    {r.newLine ?? ''}
                  </span>
                  <span className="sign" role="cell" aria-label={r.kind === 'add' ? 'added' : r.kind === 'del' ? 'removed' : 'unchanged'}>
                    {r.kind === 'add' ? '+' : r.kind === 'del' ? '−' : ' '}
                  </span>
                  <code role="cell">{r.text}</code>
                </div>
              ),
            )}
          </div>
        </div>
      ) : null}
    </section>
  );
}
