/** Topic settings: description, owner, retention, inline threshold, JSON Schema, rollout plan editor. */
import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { ApiError, api, type TopicState } from '../api.ts';
import { ErrorBox, FieldError, fieldMessage } from '../components/ui.tsx';
import { formatDuration, parseDuration } from '../lib/countdown.ts';
import { parseScope, scopeLabel } from '../lib/format.ts';
import { useInvalidateTopic } from './TopicPage.tsx';

interface StageRow {
  name: string;
  scope: string;
  bake: string;
}

export function SettingsTab({ name, state }: { name: string; state: TopicState }) {
  const t = state.topic;
  const [description, setDescription] = useState(t.description);
  const [owner, setOwner] = useState(t.owner);
  const [keepLast, setKeepLast] = useState(t.retention.keepLast === undefined ? '' : String(t.retention.keepLast));
  const [maxAge, setMaxAge] = useState(t.retention.maxAgeMs === undefined ? '' : formatDuration(t.retention.maxAgeMs));
  const [threshold, setThreshold] = useState(String(t.inlineThresholdBytes));
  const [schema, setSchema] = useState(t.jsonSchema === undefined ? '' : JSON.stringify(JSON.parse(t.jsonSchema), null, 2));
  const [stages, setStages] = useState<StageRow[]>(
    (t.rolloutPlan?.stages ?? []).map((s) => ({ name: s.name ?? '', scope: Object.keys(s.scope).length === 0 ? 'global' : scopeLabel(s.scope), bake: formatDuration(s.bakeMs) })),
  );
  const [gate, setGate] = useState(t.rolloutPlan?.health !== undefined);
  const [gateRatio, setGateRatio] = useState(String(Math.round((t.rolloutPlan?.health?.maxFailureRatio ?? 0.05) * 100)));
  const [gateMin, setGateMin] = useState(String(t.rolloutPlan?.health?.minInstances ?? 5));
  const [gateAction, setGateAction] = useState<'pause' | 'rollback'>(t.rolloutPlan?.health?.action ?? 'pause');
  const invalidate = useInvalidateTopic(name);

  const save = useMutation({
    mutationFn: () => {
      const bad = (field: string, message: string) => new ApiError(400, 'INVALID_ARGUMENT', message, field);
      const retention: Record<string, number> = {};
      if (keepLast.trim() !== '') {
        if (!/^\d+$/.test(keepLast.trim())) throw bad('retention.keepLast', 'keep last must be a whole number');
        retention.keepLast = Number(keepLast);
      }
      if (maxAge.trim() !== '') {
        const ms = parseDuration(maxAge);
        if (ms === undefined) throw bad('retention.maxAgeMs', 'max age must be a duration like 30d, 12h or 90m');
        retention.maxAgeMs = ms;
      }
      if (!/^\d+$/.test(threshold.trim())) throw bad('inlineThresholdBytes', 'the inline threshold must be a whole number of bytes');
      let jsonSchema: unknown = null;
      if (schema.trim() !== '') {
        try {
          jsonSchema = JSON.parse(schema);
        } catch (e) {
          throw bad('jsonSchema', `not valid JSON: ${(e as Error).message}`);
        }
      }
      let rolloutPlan: unknown = null;
      if (stages.length > 0) {
        const planStages = stages.map((s, i) => {
          let scope;
          try {
            scope = parseScope(s.scope);
          } catch (e) {
            throw bad(`rolloutPlan.stages[${i}].scope`, `stage ${i + 1}: ${(e as Error).message}`);
          }
          const bakeMs = i === 0 && s.bake.trim() === '' ? 0 : parseDuration(s.bake);
          if (bakeMs === undefined) throw bad(`rolloutPlan.stages[${i}].bakeMs`, `stage ${i + 1}: bake time must be a duration like 10m or 1h`);
          return { ...(s.name.trim() ? { name: s.name.trim() } : {}), scope, bakeMs };
        });
        rolloutPlan = {
          stages: planStages,
          ...(gate ? { health: { maxFailureRatio: Number(gateRatio) / 100, minInstances: Number(gateMin), action: gateAction } } : {}),
        };
      }
      return api.updateTopic(name, {
        description,
        owner,
        retention,
        inlineThresholdBytes: Number(threshold),
        jsonSchema,
        rolloutPlan,
        expectedRevision: t.revision,
      });
    },
    onSuccess: invalidate,
  });
  const e = save.error;
  const fields = ['description', 'owner', 'retention', 'inlineThresholdBytes', 'jsonSchema', 'rolloutPlan'];
  const other = e && !fields.some((f) => fieldMessage(e, f)) ? e : undefined;
  return (
    <form
      className="form card settings"
      onSubmit={(ev) => {
        ev.preventDefault();
        save.mutate();
      }}
    >
      <div className="grid2">
        <div>
          <label htmlFor="st-owner">Owner</label>
          <input id="st-owner" value={owner} onChange={(ev) => setOwner(ev.target.value)} aria-describedby="st-owner-e" aria-invalid={!!fieldMessage(e, 'owner')} />
          <FieldError id="st-owner-e" message={fieldMessage(e, 'owner')} />
        </div>
        <div>
          <label htmlFor="st-threshold">Inline threshold (bytes)</label>
          <input id="st-threshold" inputMode="numeric" value={threshold} onChange={(ev) => setThreshold(ev.target.value)} aria-describedby="st-threshold-e" aria-invalid={!!fieldMessage(e, 'inlineThresholdBytes')} />
          <FieldError id="st-threshold-e" message={fieldMessage(e, 'inlineThresholdBytes')} />
        </div>
      </div>
      <label htmlFor="st-desc">Description</label>
      <textarea id="st-desc" rows={2} value={description} onChange={(ev) => setDescription(ev.target.value)} aria-describedby="st-desc-e" />
      <FieldError id="st-desc-e" message={fieldMessage(e, 'description')} />

      <fieldset>
        <legend>Retention</legend>
        <div className="grid2">
          <div>
            <label htmlFor="st-keep">Keep the last N versions</label>
            <input id="st-keep" inputMode="numeric" value={keepLast} onChange={(ev) => setKeepLast(ev.target.value)} placeholder="keep all" aria-describedby="st-keep-e" />
            <FieldError id="st-keep-e" message={fieldMessage(e, 'retention.keepLast')} />
          </div>
          <div>
            <label htmlFor="st-age">and versions younger than</label>
            <input id="st-age" value={maxAge} onChange={(ev) => setMaxAge(ev.target.value)} placeholder="e.g. 30d" aria-describedby="st-age-e" />
            <FieldError id="st-age-e" message={fieldMessage(e, 'retention.maxAgeMs')} />
          </div>
        </div>
        <FieldError id="st-ret-e" message={fieldMessage(e, 'retention') && !fieldMessage(e, 'retention.keepLast') && !fieldMessage(e, 'retention.maxAgeMs') ? fieldMessage(e, 'retention') : undefined} />
        <p className="muted small">Pinned versions, versions latest for a scope and versions in an active rollout are never deleted.</p>
      </fieldset>

      <label htmlFor="st-schema">JSON Schema for JSON payloads (optional)</label>
      <textarea id="st-schema" rows={6} className="mono" value={schema} onChange={(ev) => setSchema(ev.target.value)} placeholder='{"type": "object", "required": ["devices"]}' aria-describedby="st-schema-e" aria-invalid={!!fieldMessage(e, 'jsonSchema')} spellCheck={false} />
      <FieldError id="st-schema-e" message={fieldMessage(e, 'jsonSchema')} />

      <fieldset className="plan-editor">
        <legend>Rollout plan</legend>
        {stages.length === 0 ? <p className="muted small">No plan: publishes release at once to the scopes chosen.</p> : null}
        {stages.map((s, i) => (
          <div className="stage-row" key={i}>
            <span className="stage-num">{i + 1}</span>
            <input aria-label={`Stage ${i + 1} name`} placeholder="name (e.g. canary)" value={s.name} onChange={(ev) => setStages(stages.map((x, j) => (j === i ? { ...x, name: ev.target.value } : x)))} />
            <input aria-label={`Stage ${i + 1} scope`} placeholder="scope: cluster=canary or global" value={s.scope} onChange={(ev) => setStages(stages.map((x, j) => (j === i ? { ...x, scope: ev.target.value } : x)))} />
            <input
              aria-label={`Stage ${i + 1} bake time`}
              placeholder={i === 0 ? 'released at once' : 'bake, e.g. 10m'}
              value={s.bake}
              disabled={i === 0}
              onChange={(ev) => setStages(stages.map((x, j) => (j === i ? { ...x, bake: ev.target.value } : x)))}
              className="narrow"
            />
            <button type="button" className="icon-btn" aria-label={`Move stage ${i + 1} up`} disabled={i === 0} onClick={() => setStages(stages.map((x, j) => (j === i - 1 ? (stages[i] as StageRow) : j === i ? (stages[i - 1] as StageRow) : x)))}>
              ↑
            </button>
            <button type="button" className="icon-btn" aria-label={`Remove stage ${i + 1}`} onClick={() => setStages(stages.filter((_, j) => j !== i))}>
              ×
            </button>
          </div>
        ))}
        <button type="button" className="btn btn-small btn-ghost" onClick={() => setStages([...stages, { name: '', scope: stages.length === 0 ? '' : 'global', bake: stages.length === 0 ? '' : '10m' }])}>
          + Add stage
        </button>
        {stages.length > 0 ? (
          <div className="gate">
            <label className="radio">
              <input type="checkbox" checked={gate} onChange={(ev) => setGate(ev.target.checked)} /> Health gate
            </label>
            {gate ? (
              <span className="gate-fields">
                <label htmlFor="st-gate-action">when more than</label>
                <input id="st-gate-ratio" aria-label="Failure percentage" className="narrow" value={gateRatio} onChange={(ev) => setGateRatio(ev.target.value)} />% of at least
                <input aria-label="Minimum instances" className="narrow" value={gateMin} onChange={(ev) => setGateMin(ev.target.value)} /> instances fail,
                <select id="st-gate-action" value={gateAction} onChange={(ev) => setGateAction(ev.target.value as 'pause' | 'rollback')}>
                  <option value="pause">pause the run</option>
                  <option value="rollback">roll it back</option>
                </select>
              </span>
            ) : null}
          </div>
        ) : null}
        <FieldError id="st-plan-e" message={fieldMessage(e, 'rolloutPlan')} />
      </fieldset>
      {other ? <ErrorBox error={other} title="The settings were not saved" /> : null}
      {save.isSuccess ? (
        <div className="success" role="status">
          Saved (revision {save.data.revision}).
        </div>
      ) : null}
      <div className="actions">
        <button type="submit" className="btn btn-primary" disabled={save.isPending}>
          {save.isPending ? 'Saving…' : 'Save settings'}
        </button>
      </div>
    </form>
  );
}
