// Link a BigQuery query to a key result or objective (or change the query
// of an existing link). "Test" runs the server's checks and the query once
// without saving (previewDataSource); a refusal is shown next to the SQL.
import { useEffect, useId, useState, type FormEvent } from 'react';
import {
  ApiError,
  errorText,
  fetchConnections,
  linkDataSource,
  previewDataSource,
  updateDataSource,
  type Connection,
  type DataSourceSummary,
  type LinkInput,
  type Preview,
} from './api';
import { Dialog, Field } from './dialog';
import { formatBytes, formatInterval, formatNumber } from './format';

/** The choices for how often to sync; "" keeps the server's default. */
const INTERVALS = [0, 900, 3600, 6 * 3600, 86400];

const EXAMPLE_SQL = `SELECT COUNT(*)
FROM \`my-project.crm.leads\`
WHERE converted_at BETWEEN @period_start AND @period_end`;

export function LinkDialog({
  target,
  title,
  existing,
  onDone,
  onCancel,
}: {
  target: { keyResultId: string } | { objectiveId: string };
  title: string;
  /** The current link, to change its query instead of creating one. */
  existing?: DataSourceSummary | null;
  onDone: () => void;
  onCancel: () => void;
}) {
  const [connections, setConnections] = useState<Connection[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [sql, setSql] = useState(existing?.sql ?? '');
  // "" = automatic (omit connectionId: the server picks the only usable one).
  const [connectionId, setConnectionId] = useState(existing?.connection?.id ?? '');
  const [interval, setSyncInterval] = useState(existing ? String(existing.syncIntervalSeconds) : '0');
  const [busy, setBusy] = useState<'test' | 'save' | null>(null);
  const [sqlError, setSqlError] = useState<string | null>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  const sqlErrorId = useId();
  const sqlHintId = useId();
  const resultId = useId();

  useEffect(() => {
    fetchConnections()
      .then((all) => setConnections(all.filter((c) => c.canUse)))
      .catch((e) => setLoadError(errorText(e)));
  }, []);

  const usable = connections ?? [];
  const automatic = usable.length === 1 && !existing;
  const intervals = existing && !INTERVALS.includes(existing.syncIntervalSeconds) ? [...INTERVALS, existing.syncIntervalSeconds] : INTERVALS;

  function input(): LinkInput {
    const seconds = Number(interval);
    return {
      ...target,
      sql,
      ...(connectionId ? { connectionId } : {}),
      ...(seconds > 0 ? { syncIntervalSeconds: seconds } : {}),
    };
  }

  async function run(kind: 'test' | 'save') {
    setBusy(kind);
    setSqlError(null);
    if (kind === 'test') setPreview(null);
    try {
      if (kind === 'test') {
        setPreview(await previewDataSource(input()));
      } else {
        if (existing) {
          const { sql: newSql, connectionId: newConnection, syncIntervalSeconds } = input();
          await updateDataSource(existing.id, { sql: newSql, connectionId: newConnection, syncIntervalSeconds });
        } else {
          await linkDataSource(input());
        }
        onDone();
        return;
      }
    } catch (e) {
      setSqlError(e instanceof ApiError ? e.display : errorText(e));
    }
    setBusy(null);
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    void run('save');
  }

  return (
    <Dialog title={existing ? `Change the query of “${title}”` : `Link a BigQuery query to “${title}”`} onClose={onCancel} wide>
      <form onSubmit={submit} className="form">
        <div className="field">
          <label htmlFor={`${sqlHintId}-sql`}>SQL query</label>
          <textarea
            id={`${sqlHintId}-sql`}
            className="sql"
            rows={7}
            required
            spellCheck={false}
            placeholder={EXAMPLE_SQL}
            value={sql}
            onChange={(e) => {
              setSql(e.target.value);
              setPreview(null);
            }}
            aria-invalid={sqlError ? true : undefined}
            aria-describedby={[sqlHintId, sqlError ? sqlErrorId : undefined].filter(Boolean).join(' ')}
          />
          <div className="hint" id={sqlHintId}>
            One SELECT returning one row with one number. It may use <code>@period_start</code>, <code>@period_end</code> (DATE)
            and <code>@as_of</code> (TIMESTAMP).
          </div>
          {sqlError && (
            <p className="error" role="alert" id={sqlErrorId}>
              {sqlError}
            </p>
          )}
        </div>
        <div className="row">
          <Field
            label="Connection"
            hint={
              loadError ??
              (connections && usable.length === 0
                ? 'You may not use any connection yet: ask an admin to share one with you.'
                : automatic
                  ? `Automatic picks the only connection you may use (${usable[0].name}).`
                  : undefined)
            }
          >
            {(id, describedBy) => (
              <select id={id} value={connectionId} aria-describedby={describedBy} onChange={(e) => setConnectionId(e.target.value)}>
                {automatic || usable.length === 0 ? (
                  <option value="">Automatic{automatic ? ` (${usable[0].name})` : ''}</option>
                ) : (
                  !existing && <option value="">Choose a connection…</option>
                )}
                {usable.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.name} ({c.projectId})
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Sync every">
            {(id) => (
              <select id={id} value={interval} onChange={(e) => setSyncInterval(e.target.value)}>
                {intervals.map((s) => (
                  <option key={s} value={String(s)}>
                    {s === 0 ? 'Server default' : formatInterval(s)}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <div id={resultId} className="preview" aria-live="polite">
          {preview && (
            <p className="ok-message">
              Test result: <strong>{formatNumber(preview.value)}</strong> · {formatBytes(preview.bytesProcessed)} processed · via{' '}
              {preview.connection.name}
              {preview.jobId ? ` · job ${preview.jobId}` : ''}. Nothing was saved.
            </p>
          )}
        </div>
        <div className="form-buttons">
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
          <button type="button" onClick={() => void run('test')} disabled={busy !== null || !sql.trim()}>
            {busy === 'test' ? 'Testing…' : 'Test'}
          </button>
          <button type="submit" className="primary" disabled={busy !== null}>
            {busy === 'save' ? 'Saving…' : existing ? 'Save query' : 'Link query'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
