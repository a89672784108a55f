/** Publish from the UI: paste text or upload a file (with progress), metadata, scopes or the rollout plan. */
import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { ApiError, JSON_UPLOAD_MAX_BYTES, publishData, type TopicState } from '../api.ts';
import { ErrorBox, FieldError, fieldMessage } from '../components/ui.tsx';
import { formatBytes, parseScope, scopeLabel } from '../lib/format.ts';
import { useInvalidateTopic } from './TopicPage.tsx';

type Target = 'global' | 'scopes' | 'plan';
const CONTENT_TYPES = ['application/json', 'text/plain', 'text/csv', 'application/yaml', 'application/octet-stream'];

export function PublishTab({ name, state }: { name: string; state: TopicState }) {
  const plan = state.topic.rolloutPlan;
  const [mode, setMode] = useState<'text' | 'file'>('text');
  const [text, setText] = useState('');
  const [file, setFile] = useState<File>();
  const [contentType, setContentType] = useState('application/json');
  const [meta, setMeta] = useState<{ k: string; v: string }[]>([{ k: '', v: '' }]);
  const [target, setTarget] = useState<Target>(plan ? 'plan' : 'global');
  const [scopesText, setScopesText] = useState('');
  const [progress, setProgress] = useState<{ loaded: number; total: number }>();
  const [localError, setLocalError] = useState<{ field: string; message: string }>();
  const invalidate = useInvalidateTopic(name);

  const publish = useMutation({
    mutationFn: async () => {
      setLocalError(undefined);
      const metadata: Record<string, string> = {};
      for (const [i, { k, v }] of meta.entries()) {
        if (k.trim() === '' && v === '') continue;
        if (k.trim() === '') throw new ApiError(400, 'INVALID_ARGUMENT', `metadata row ${i + 1}: the key is empty`, 'metadata');
        metadata[k.trim()] = v;
      }
      let scopes: Record<string, string>[] | undefined;
      if (target === 'scopes') {
        const lines = scopesText.split('\n').map((l) => l.trim()).filter(Boolean);
        if (lines.length === 0) throw new ApiError(400, 'INVALID_ARGUMENT', 'list at least one scope, one per line (e.g. cluster=canary)', 'scopes');
        try {
          scopes = lines.map(parseScope);
        } catch (e) {
          throw new ApiError(400, 'INVALID_ARGUMENT', (e as Error).message, 'scopes');
        }
      }
      const data = mode === 'text' ? text : file;
      if (data === undefined) throw new ApiError(400, 'INVALID_ARGUMENT', 'choose a file to upload', 'data');
      if (mode === 'text' && text === '') throw new ApiError(400, 'INVALID_ARGUMENT', 'paste the content to publish', 'data');
      setProgress({ loaded: 0, total: typeof data === 'string' ? data.length : data.size });
      return publishData(name, data, {
        contentType,
        metadata,
        ...(scopes === undefined ? {} : { scopes }),
        useRolloutPlan: target === 'plan',
        onProgress: (loaded, total) => setProgress({ loaded, total }),
      });
    },
    onSuccess: () => {
      invalidate();
      setText('');
      setFile(undefined);
    },
    onSettled: () => setProgress(undefined),
  });

  const err = publish.error ?? (localError ? new ApiError(400, 'INVALID_ARGUMENT', localError.message, localError.field) : undefined);
  const dataError = fieldMessage(err, 'data', 'dataBase64', 'contentType', 'size');
  const metaError = fieldMessage(err, 'metadata');
  const scopesError = fieldMessage(err, 'scopes', 'useRolloutPlan');
  const otherError = err && !dataError && !metaError && !scopesError ? err : undefined;
  const pct = progress && progress.total > 0 ? Math.min(100, Math.round((progress.loaded / progress.total) * 100)) : 0;

  return (
    <form
      className="form publish-form card"
      onSubmit={(e) => {
        e.preventDefault();
        publish.mutate();
      }}
    >
      <fieldset className="seg" aria-label="What to publish">
        <legend className="sr-only">What to publish</legend>
        <label className={mode === 'text' ? 'seg-item on' : 'seg-item'}>
          <input type="radio" name="mode" value="text" checked={mode === 'text'} onChange={() => setMode('text')} /> Paste text
        </label>
        <label className={mode === 'file' ? 'seg-item on' : 'seg-item'}>
          <input type="radio" name="mode" value="file" checked={mode === 'file'} onChange={() => setMode('file')} /> Upload a file
        </label>
      </fieldset>

      {mode === 'text' ? (
        <>
          <label htmlFor="pub-data">Content</label>
          <textarea
            id="pub-data"
            className="mono"
            rows={10}
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder='{"devices": ["tv", "phone"]}'
            aria-invalid={!!dataError}
            aria-describedby="pub-data-error"
            spellCheck={false}
          />
        </>
      ) : (
        <>
          <label htmlFor="pub-file">File</label>
          <input
            id="pub-file"
            type="file"
            onChange={(e) => {
              const f = e.target.files?.[0];
              setFile(f);
              if (f?.type) setContentType(f.type);
            }}
            aria-invalid={!!dataError}
            aria-describedby="pub-data-error"
          />
          {file ? (
            <p className="muted small">
              {file.name}, {formatBytes(file.size)}
              {file.size > JSON_UPLOAD_MAX_BYTES ? ' — streamed to the service' : ''}
            </p>
          ) : null}
        </>
      )}
      <FieldError id="pub-data-error" message={dataError} />

      <label htmlFor="pub-ct">Content type</label>
      <input id="pub-ct" list="pub-ct-list" value={contentType} onChange={(e) => setContentType(e.target.value)} />
      <datalist id="pub-ct-list">
        {CONTENT_TYPES.map((c) => (
          <option key={c} value={c} />
        ))}
      </datalist>

      <fieldset className="meta-editor" aria-describedby="pub-meta-error">
        <legend>Metadata</legend>
        {meta.map((row, i) => (
          <div key={i} className="meta-row">
            <input aria-label={`Metadata key ${i + 1}`} placeholder="key" value={row.k} onChange={(e) => setMeta(meta.map((r, j) => (j === i ? { ...r, k: e.target.value } : r)))} />
            <input aria-label={`Metadata value ${i + 1}`} placeholder="value" value={row.v} onChange={(e) => setMeta(meta.map((r, j) => (j === i ? { ...r, v: e.target.value } : r)))} />
            <button type="button" className="icon-btn" aria-label={`Remove metadata row ${i + 1}`} onClick={() => setMeta(meta.length === 1 ? [{ k: '', v: '' }] : meta.filter((_, j) => j !== i))}>
              ×
            </button>
          </div>
        ))}
        <button type="button" className="btn btn-small btn-ghost" onClick={() => setMeta([...meta, { k: '', v: '' }])}>
          + Add metadata
        </button>
        <FieldError id="pub-meta-error" message={metaError} />
      </fieldset>

      <fieldset aria-describedby="pub-scopes-error">
        <legend>Release to</legend>
        <label className="radio">
          <input type="radio" name="target" checked={target === 'global'} onChange={() => setTarget('global')} /> Everyone (global)
        </label>
        <label className="radio">
          <input type="radio" name="target" checked={target === 'scopes'} onChange={() => setTarget('scopes')} /> Chosen scopes
        </label>
        {target === 'scopes' ? (
          <>
            <label htmlFor="pub-scopes" className="small">
              One scope per line, as attribute=value pairs
            </label>
            <textarea id="pub-scopes" rows={3} className="mono" value={scopesText} onChange={(e) => setScopesText(e.target.value)} placeholder={'cluster=checkout-canary\nregion=eu-west-1, application=checkout'} />
          </>
        ) : null}
        <label className={plan ? 'radio' : 'radio disabled'}>
          <input type="radio" name="target" checked={target === 'plan'} onChange={() => setTarget('plan')} disabled={!plan} /> The topic's rollout plan
          {plan ? (
            <span className="muted small"> ({plan.stages.map((s, i) => s.name ?? scopeLabel(s.scope) ?? `stage ${i + 1}`).join(' → ')})</span>
          ) : (
            <span className="muted small">
              {' '}
              (none yet: <Link to={`/topics/${encodeURIComponent(name)}/settings`}>add one in Settings</Link>)
            </span>
          )}
        </label>
        <FieldError id="pub-scopes-error" message={scopesError} />
      </fieldset>

      {progress ? (
        <div className="progress" role="progressbar" aria-label="Upload progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}>
          <div className="progress-bar" style={{ width: `${pct}%` }} />
          <span className="progress-text">
            {formatBytes(progress.loaded)} / {formatBytes(progress.total)} ({pct}%)
          </span>
        </div>
      ) : null}
      {otherError ? <ErrorBox error={otherError} title="The publish was refused" /> : null}
      {publish.isSuccess ? (
        <div className="success" role="status">
          Published <Link to={`/topics/${encodeURIComponent(name)}/versions/${publish.data.version.version}`}>v{publish.data.version.version}</Link>
          {publish.data.replayed ? ' (replayed: the same publish was already committed)' : ''}.
        </div>
      ) : null}
      <div className="actions">
        <button type="submit" className="btn btn-primary" disabled={publish.isPending}>
          {publish.isPending ? 'Publishing…' : 'Publish'}
        </button>
      </div>
    </form>
  );
}
