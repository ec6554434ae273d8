// Create and edit objectives and key results, and check in a value.
import { useId, useState, type FormEvent } from 'react';
import {
  checkIn,
  createKeyResult,
  createObjective,
  errorText,
  updateKeyResult,
  updateObjective,
  type KeyResult,
  type KeyResultKind,
  type KpiCondition,
  type Objective,
  type ProgressMode,
  type User,
} from './api';
import { Dialog, ErrorMessage, Field } from './dialog';

/** "" → undefined, else the number (the browser has checked it is one). */
function num(text: string): number | undefined {
  return text.trim() === '' ? undefined : Number(text);
}

function text(value: number | null | undefined): string {
  return value === null || value === undefined ? '' : String(value);
}

function FormButtons({ busy, submit, onCancel }: { busy: boolean; submit: string; onCancel: () => void }) {
  return (
    <div className="form-buttons">
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Saving…' : submit}
      </button>
    </div>
  );
}

export function ObjectiveForm({
  objective,
  parentId: initialParent,
  objectives,
  users,
  me,
  defaultPeriod,
  onDone,
  onCancel,
}: {
  /** The objective to edit; absent to create one. */
  objective?: Objective;
  /** For a new objective: the objective it aligns to. */
  parentId?: string;
  /** Candidates for the parent. */
  objectives: Objective[];
  users: User[];
  me: User;
  defaultPeriod: { from: string; to: string };
  onDone: (id: string) => void;
  onCancel: () => void;
}) {
  const o = objective;
  const [title, setTitle] = useState(o?.title ?? '');
  const [description, setDescription] = useState(o?.description ?? '');
  const [parentId, setParentId] = useState(o?.parent?.id ?? initialParent ?? '');
  const [ownerId, setOwnerId] = useState(o?.owner?.id ?? me.id);
  const [periodStart, setPeriodStart] = useState(o?.periodStart ?? defaultPeriod.from);
  const [periodEnd, setPeriodEnd] = useState(o?.periodEnd ?? defaultPeriod.to);
  const [progressMode, setProgressMode] = useState<ProgressMode>(o?.progressMode ?? 'ROLL_UP');
  const [startValue, setStartValue] = useState(text(o?.startValue));
  const [targetValue, setTargetValue] = useState(text(o?.targetValue));
  const [weight, setWeight] = useState(text(o?.weight ?? 1));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const owners = users.some((u) => u.id === me.id) ? users : [me, ...users];
  const parents = objectives.filter((c) => c.id !== o?.id);
  const ownValue = progressMode !== 'ROLL_UP';

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const input = {
      title,
      description,
      parentId: parentId || null,
      ownerId,
      periodStart,
      periodEnd,
      progressMode,
      ...(ownValue ? { startValue: num(startValue), targetValue: num(targetValue) } : {}),
      weight: num(weight),
    };
    try {
      const saved = o ? await updateObjective(o.id, input) : await createObjective(input);
      onDone(saved.id);
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  }

  return (
    <Dialog title={o ? `Edit objective` : 'New objective'} onClose={onCancel}>
      <form onSubmit={submit} className="form">
        <Field label="Title">
          {(id) => <input id={id} required value={title} onChange={(e) => setTitle(e.target.value)} />}
        </Field>
        <Field label="Description">
          {(id) => <textarea id={id} rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />}
        </Field>
        <div className="row">
          <Field label="Period start">
            {(id) => <input id={id} type="date" required value={periodStart} onChange={(e) => setPeriodStart(e.target.value)} />}
          </Field>
          <Field label="Period end">
            {(id) => <input id={id} type="date" required value={periodEnd} onChange={(e) => setPeriodEnd(e.target.value)} />}
          </Field>
        </div>
        <div className="row">
          <Field label="Owner">
            {(id) => (
              <select id={id} value={ownerId} onChange={(e) => setOwnerId(e.target.value)}>
                {owners.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.name || u.email}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Aligns to (parent)">
            {(id) => (
              <select id={id} value={parentId} onChange={(e) => setParentId(e.target.value)}>
                <option value="">None (a top-level objective)</option>
                {parents.map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.title}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <div className="row">
          <Field
            label="Progress from"
            hint={progressMode === 'ROLL_UP' ? 'Weighted average of its metric key results and child objectives.' : undefined}
          >
            {(id, describedBy) => (
              <select
                id={id}
                value={progressMode}
                aria-describedby={describedBy}
                onChange={(e) => setProgressMode(e.target.value as ProgressMode)}
              >
                <option value="ROLL_UP">Roll-up of key results</option>
                <option value="MANUAL">Its own value (check-ins)</option>
                <option value="DATA_SOURCE">Its own value (BigQuery query)</option>
              </select>
            )}
          </Field>
          <Field label="Weight in parent">
            {(id) => <input id={id} type="number" step="any" min="0" value={weight} onChange={(e) => setWeight(e.target.value)} />}
          </Field>
        </div>
        {ownValue && (
          <div className="row">
            <Field label="Start value">
              {(id) => <input id={id} type="number" step="any" required value={startValue} onChange={(e) => setStartValue(e.target.value)} />}
            </Field>
            <Field label="Target value">
              {(id) => <input id={id} type="number" step="any" required value={targetValue} onChange={(e) => setTargetValue(e.target.value)} />}
            </Field>
          </div>
        )}
        <ErrorMessage message={error} />
        <FormButtons busy={busy} submit={o ? 'Save objective' : 'Create objective'} onCancel={onCancel} />
      </form>
    </Dialog>
  );
}

export function KeyResultForm({
  keyResult,
  objective,
  onDone,
  onCancel,
}: {
  keyResult?: KeyResult;
  /** The objective it belongs to. */
  objective: { id: string; title: string };
  onDone: (id: string) => void;
  onCancel: () => void;
}) {
  const k = keyResult;
  const [title, setTitle] = useState(k?.title ?? '');
  const [kind, setKind] = useState<KeyResultKind>(k?.kind ?? 'METRIC');
  const [kpiCondition, setKpiCondition] = useState<KpiCondition>(k?.kpiCondition ?? 'AT_LEAST');
  const [startValue, setStartValue] = useState(text(k?.startValue ?? (k ? null : 0)));
  const [targetValue, setTargetValue] = useState(text(k?.targetValue));
  const [unit, setUnit] = useState(k?.unit ?? '');
  const [weight, setWeight] = useState(text(k?.weight ?? 1));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const common = {
      title,
      unit,
      weight: num(weight),
      targetValue: num(targetValue)!,
      ...(kind === 'KPI' ? { kpiCondition } : { startValue: num(startValue) }),
    };
    try {
      const saved = k
        ? await updateKeyResult(k.id, common)
        : await createKeyResult({ ...common, objectiveId: objective.id, kind });
      onDone(saved.id);
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  }

  return (
    <Dialog title={k ? 'Edit key result' : `New key result for “${objective.title}”`} onClose={onCancel}>
      <form onSubmit={submit} className="form">
        <Field label="Title">
          {(id) => <input id={id} required value={title} onChange={(e) => setTitle(e.target.value)} />}
        </Field>
        <fieldset className="choices" disabled={!!k}>
          <legend>Kind{k ? ' (fixed once created)' : ''}</legend>
          <label>
            <input type="radio" name="kind" checked={kind === 'METRIC'} onChange={() => setKind('METRIC')} /> Metric: move a number
            from a start value to a target
          </label>
          <label>
            <input type="radio" name="kind" checked={kind === 'KPI'} onChange={() => setKind('KPI')} /> KPI: keep a number on one
            side of a target
          </label>
        </fieldset>
        <div className="row">
          {kind === 'METRIC' ? (
            <Field label="Start value">
              {(id) => <input id={id} type="number" step="any" required value={startValue} onChange={(e) => setStartValue(e.target.value)} />}
            </Field>
          ) : (
            <Field label="Condition">
              {(id) => (
                <select id={id} value={kpiCondition} onChange={(e) => setKpiCondition(e.target.value as KpiCondition)}>
                  <option value="AT_LEAST">At least the target</option>
                  <option value="AT_MOST">At most the target</option>
                </select>
              )}
            </Field>
          )}
          <Field label="Target value">
            {(id) => <input id={id} type="number" step="any" required value={targetValue} onChange={(e) => setTargetValue(e.target.value)} />}
          </Field>
        </div>
        <div className="row">
          <Field label="Unit" hint="e.g. leads, %, ms">
            {(id, describedBy) => <input id={id} value={unit} aria-describedby={describedBy} onChange={(e) => setUnit(e.target.value)} />}
          </Field>
          <Field label="Weight">
            {(id) => <input id={id} type="number" step="any" min="0" value={weight} onChange={(e) => setWeight(e.target.value)} />}
          </Field>
        </div>
        <ErrorMessage message={error} />
        <FormButtons busy={busy} submit={k ? 'Save key result' : 'Create key result'} onCancel={onCancel} />
      </form>
    </Dialog>
  );
}

export function CheckInForm({
  target,
  title,
  linked,
  onDone,
  onCancel,
}: {
  target: { keyResultId: string } | { objectiveId: string };
  title: string;
  /** Whether a data source feeds it (then the pause option matters). */
  linked: boolean;
  onDone: () => void;
  onCancel: () => void;
}) {
  const [value, setValue] = useState('');
  const [note, setNote] = useState('');
  const [pause, setPause] = useState(false);
  const pauseId = useId();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await checkIn({ ...target, value: Number(value), note: note || undefined, pauseAutomaticUpdates: pause });
      onDone();
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  }

  return (
    <Dialog title={`Check in: ${title}`} onClose={onCancel}>
      <form onSubmit={submit} className="form">
        <Field label="Value">
          {(id) => <input id={id} type="number" step="any" required value={value} onChange={(e) => setValue(e.target.value)} />}
        </Field>
        <Field label="Note">
          {(id) => <textarea id={id} rows={2} value={note} onChange={(e) => setNote(e.target.value)} />}
        </Field>
        <div className="checkbox">
          <input
            id={pauseId}
            type="checkbox"
            checked={pause}
            aria-describedby={`${pauseId}-hint`}
            onChange={(e) => setPause(e.target.checked)}
          />
          <label htmlFor={pauseId}>Pause automatic updates</label>
          <div className="hint" id={`${pauseId}-hint`}>
            {linked
              ? 'Without this, the next BigQuery sync overwrites the value.'
              : 'Only matters once a BigQuery query is linked.'}
          </div>
        </div>
        <ErrorMessage message={error} />
        <FormButtons busy={busy} submit="Check in" onCancel={onCancel} />
      </form>
    </Dialog>
  );
}
