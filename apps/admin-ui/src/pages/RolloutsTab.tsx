/** Rollout runs: stages with their state and a countdown to the next one; pause / resume / advance / abort. */
import { useMutation } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { Link } from 'react-router';
import { api, type TopicState } from '../api.ts';
import { ConfirmDialog } from '../components/ConfirmDialog.tsx';
import { Badge, Empty, ErrorBox } from '../components/ui.tsx';
import { formatCountdown, formatDuration, stageViews, type RunView } from '../lib/countdown.ts';
import { formatAgo, formatTime, scopeLabel } from '../lib/format.ts';
import { useInvalidateTopic } from './TopicPage.tsx';

type Control = 'pause' | 'resume' | 'advance' | 'abort';

function useNow(periodMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), periodMs);
    return () => clearInterval(t);
  }, [periodMs]);
  return now;
}

const STATUS_KIND = { running: 'rolling', paused: 'warn', completed: 'ok', aborted: 'bad', rolled_back: 'bad' } as const;

function controlText(action: Control, run: RunView, name: string) {
  const stages = stageViews(run);
  const next = stages.find((s) => s.state === 'next');
  switch (action) {
    case 'pause':
      return <p>The run stops where it is: consumers keep what they have; no further stage is released until you resume.</p>;
    case 'resume':
      return <p>The run goes on; the bake clock of the current stage starts again now.</p>;
    case 'advance':
      return next ? (
        <p>
          Stage <strong>{next.name}</strong> ({scopeLabel(next.stage.scope)}) is released now: its consumers get <strong>v{run.version}</strong> within a poll, without waiting for the bake time.
        </p>
      ) : (
        <p>There is no further stage.</p>
      );
    case 'abort':
      return (
        <p>
          <strong>v{run.version}</strong> is withdrawn from every scope it reached: those consumers of <strong>{name}</strong> go back to the version they had before.
        </p>
      );
  }
}

function RunCard({ run, name, now }: { run: RunView; name: string; now: number }) {
  const [confirm, setConfirm] = useState<Control>();
  const invalidate = useInvalidateTopic(name);
  const control = useMutation({ mutationFn: ({ action, reason }: { action: Control; reason: string }) => api.controlRollout(name, run.runId, action, reason), onSuccess: invalidate });
  const active = run.status === 'running' || run.status === 'paused';
  const stages = stageViews(run);
  const stoppedItself = run.reason !== undefined && (run.status === 'paused' || run.status === 'rolled_back' || run.status === 'aborted');
  return (
    <article className="card run" data-testid={`run-${run.runId}`} aria-label={`Rollout of v${run.version}`}>
      <header className="run-head">
        <h3>
          Rollout of <Link to={`/topics/${encodeURIComponent(name)}/versions/${run.version}`}>v{run.version}</Link> <Badge kind={STATUS_KIND[run.status]}>{run.status.replace('_', ' ')}</Badge>
        </h3>
        <span className="muted small">
          started by {run.startedBy} {formatAgo(run.createdAt, now)} · updated {formatTime(run.updatedAt)}
        </span>
      </header>
      {stoppedItself ? (
        <p className={run.status === 'paused' ? 'notice notice-warn' : 'notice notice-bad'} role="status">
          {run.status === 'paused' ? 'Paused' : run.status === 'rolled_back' ? 'Rolled back' : 'Aborted'}: {run.reason}
        </p>
      ) : null}
      <ol className="stages">
        {stages.map((s) => (
          <li key={s.index} className={`stage stage-${s.state}`} data-state={s.state}>
            <div className="stage-dot" aria-hidden="true">
              {s.state === 'released' ? '✓' : s.index + 1}
            </div>
            <div className="stage-body">
              <div className="stage-name">{s.name}</div>
              <div className="small muted">{scopeLabel(s.stage.scope)}</div>
              <div className="small">
                {s.state === 'released' ? 'released' : s.state === 'current' ? 'released · baking' : s.state === 'withdrawn' ? 'withdrawn' : s.index === 0 ? 'first stage' : `bakes ${formatDuration(s.stage.bakeMs)}`}
              </div>
              {s.dueAt !== undefined ? (
                <div className="countdown" aria-live="off" title={formatTime(s.dueAt)}>
                  in {formatCountdown(s.dueAt, now)}
                </div>
              ) : s.state === 'next' && run.status === 'paused' ? (
                <div className="small muted">waiting (paused)</div>
              ) : null}
            </div>
          </li>
        ))}
      </ol>
      {active ? (
        <div className="actions left">
          {run.status === 'running' ? (
            <button type="button" className="btn" onClick={() => setConfirm('pause')}>
              ❚❚ Pause
            </button>
          ) : (
            <button type="button" className="btn" onClick={() => setConfirm('resume')}>
              ▶ Resume
            </button>
          )}
          <button type="button" className="btn" onClick={() => setConfirm('advance')} disabled={!stages.some((s) => s.state === 'next')}>
            » Advance now
          </button>
          <button type="button" className="btn btn-danger-outline" onClick={() => setConfirm('abort')}>
            ✕ Abort
          </button>
        </div>
      ) : null}
      {control.isError ? <ErrorBox error={control.error} /> : null}
      <ConfirmDialog
        open={confirm !== undefined}
        title={`${confirm ? confirm[0]?.toUpperCase() + confirm.slice(1) : ''} the rollout of v${run.version}`}
        confirmLabel={confirm === 'advance' ? 'Advance now' : confirm ? confirm[0]?.toUpperCase() + confirm.slice(1) : ''}
        danger={confirm === 'abort'}
        requireReason={confirm === 'abort' || confirm === 'pause'}
        onClose={() => setConfirm(undefined)}
        onConfirm={(reason) => control.mutateAsync({ action: confirm as Control, reason })}
      >
        {confirm ? controlText(confirm, run, name) : null}
      </ConfirmDialog>
    </article>
  );
}

function StartRollout({ name, state }: { name: string; state: TopicState }) {
  const [version, setVersion] = useState(String(state.topic.headVersion || ''));
  const invalidate = useInvalidateTopic(name);
  const start = useMutation({ mutationFn: () => api.startRollout(name, Number(version)), onSuccess: invalidate });
  if (!state.topic.rolloutPlan) return null;
  return (
    <form
      className="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        start.mutate();
      }}
    >
      <label htmlFor="ro-version">Roll out version</label>
      <input id="ro-version" type="number" min={1} value={version} onChange={(e) => setVersion(e.target.value)} className="narrow" />
      <button type="submit" className="btn" disabled={start.isPending || version === ''}>
        Start rollout
      </button>
      {start.isError ? <ErrorBox error={start.error} title="Could not start the rollout" /> : null}
    </form>
  );
}

export function RolloutsTab({ name, state }: { name: string; state: TopicState }) {
  const now = useNow();
  const plan = state.topic.rolloutPlan;
  const runs = state.runs;
  return (
    <div>
      <div className="toolbar">
        <span className="muted small">
          {plan ? (
            <>
              Plan: {plan.stages.map((s, i) => `${s.name ?? `stage ${i + 1}`} (${scopeLabel(s.scope)}${i > 0 ? `, bake ${formatDuration(s.bakeMs)}` : ''})`).join(' → ')}
              {plan.health ? ` · health gate: ${plan.health.action} over ${Math.round(plan.health.maxFailureRatio * 100)}% failures (≥${plan.health.minInstances} instances)` : ''}
            </>
          ) : (
            <>
              No rollout plan. <Link to={`/topics/${encodeURIComponent(name)}/settings`}>Add one in Settings</Link>.
            </>
          )}
        </span>
        <StartRollout name={name} state={state} />
      </div>
      {runs.length === 0 ? <Empty>No rollout has run on this topic.</Empty> : runs.map((r) => <RunCard key={r.runId} run={r} name={name} now={now} />)}
    </div>
  );
}
