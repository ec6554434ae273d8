// The admins' Connections screen: BigQuery connections (create, share, test)
// and the steps to grant the server's service account access.
import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import {
  createConnection,
  errorText,
  fetchBigQuerySetup,
  fetchConnections,
  shareConnection,
  testConnection,
  type BigQuerySetup,
  type Connection,
  type CredentialSource,
  type User,
} from './api';
import { useApp } from './app-context';
import { BigQueryIcon } from './bigquery-icon';
import { Dialog, ErrorMessage, Field } from './dialog';
import { formatDateTime } from './format';

/** How each credential source is named on screen. */
const CREDENTIAL_SOURCES: Record<CredentialSource, string> = {
  SERVICE_ACCOUNT_KEY: 'a service-account key file',
  AUTHORIZED_USER: 'gcloud user credentials',
  EXTERNAL_ACCOUNT: 'Workload Identity Federation',
  IMPERSONATED: 'an impersonated service account',
  METADATA_SERVER: "the Google Cloud metadata server",
  EMULATOR: 'none (a local BigQuery emulator)',
  NONE: 'none found: BigQuery calls fail until the operator sets GOOGLE_APPLICATION_CREDENTIALS or runs the server on Google Cloud',
};

export function ConnectionsScreen() {
  const [connections, setConnections] = useState<Connection[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [sharing, setSharing] = useState<Connection | null>(null);

  const load = useCallback(() => {
    fetchConnections()
      .then(setConnections)
      .catch((e) => setError(errorText(e)));
  }, []);
  useEffect(load, [load]);

  return (
    <div className="connections">
      <h1 className="page-title">Connections</h1>
      <section className="card" aria-labelledby="connections-title">
        <h2 id="connections-title">BigQuery connections</h2>
        <ErrorMessage message={error} />
        {connections === null && !error && <p>Loading…</p>}
        {connections && connections.length === 0 && <p className="hint">No connections yet. Create the first one below.</p>}
        {connections && connections.length > 0 && (
          <ul className="connection-list">
            {connections.map((c) => (
              <ConnectionItem key={c.id} connection={c} onShare={() => setSharing(c)} onChanged={load} />
            ))}
          </ul>
        )}
      </section>
      <NewConnection onCreated={load} />
      <SetupSteps />
      {sharing && (
        <ShareDialog
          connection={sharing}
          onCancel={() => setSharing(null)}
          onDone={() => {
            setSharing(null);
            load();
          }}
        />
      )}
    </div>
  );
}

function ConnectionItem({ connection: c, onShare, onChanged }: { connection: Connection; onShare: () => void; onChanged: () => void }) {
  const [testing, setTesting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const titleId = useId();

  async function test() {
    setTesting(true);
    setError(null);
    try {
      await testConnection(c.id);
      onChanged();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setTesting(false);
    }
  }

  const sharedWith = c.sharedWithEveryone
    ? 'Everyone in the organization'
    : c.sharedWith.length > 0
      ? c.sharedWith.map((u) => u.name || u.email).join(', ')
      : 'Only its owner and admins';

  return (
    <li className="connection" aria-labelledby={titleId}>
      <div className="connection-head">
        <h3>
          <BigQueryIcon /> <span id={titleId}>{c.name}</span>
        </h3>
        <div className="actions">
          {c.canManage && (
            <button type="button" className="small" onClick={test} disabled={testing} aria-describedby={titleId}>
              {testing ? 'Testing…' : 'Test'}
            </button>
          )}
          {c.canManage && (
            <button type="button" className="small" onClick={onShare} aria-describedby={titleId}>
              Share
            </button>
          )}
        </div>
      </div>
      <dl className="facts">
        <dt>Project</dt>
        <dd>
          <code>{c.projectId}</code>
        </dd>
        <dt>Location</dt>
        <dd>{c.location ?? 'Chosen by BigQuery'}</dd>
        <dt>Owner</dt>
        <dd>{c.owner?.name ?? '—'}</dd>
        <dt>Shared with</dt>
        <dd>{sharedWith}</dd>
        <dt>Last test</dt>
        <dd>
          {c.lastTest ? (
            <span className={c.lastTest.ok ? 'ok-message' : 'sync-error'}>
              {c.lastTest.ok ? 'Passed' : 'Failed'} {formatDateTime(c.lastTest.checkedAt)}: {c.lastTest.message}
            </span>
          ) : (
            'Not tested yet'
          )}
        </dd>
      </dl>
      <ErrorMessage message={error} />
    </li>
  );
}

function NewConnection({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState('');
  const [projectId, setProjectId] = useState('');
  const [location, setLocation] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setCreated(null);
    try {
      const c = await createConnection({ name, projectId, ...(location.trim() ? { location: location.trim() } : {}) });
      setCreated(`Created “${c.name}”.`);
      setName('');
      setProjectId('');
      setLocation('');
      onCreated();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="new-connection-title">
      <h2 id="new-connection-title">New connection</h2>
      <form className="form" onSubmit={submit}>
        <div className="row">
          <Field label="Name">{(id) => <input id={id} required value={name} onChange={(e) => setName(e.target.value)} />}</Field>
          <Field label="Project ID" hint="e.g. acme-analytics or example.com:acme-analytics">
            {(id, describedBy) => (
              <input
                id={id}
                required
                spellCheck={false}
                value={projectId}
                aria-describedby={describedBy}
                onChange={(e) => setProjectId(e.target.value)}
              />
            )}
          </Field>
          <Field label="Location" hint="Optional: US, EU, europe-west2 …">
            {(id, describedBy) => (
              <input id={id} value={location} aria-describedby={describedBy} onChange={(e) => setLocation(e.target.value)} />
            )}
          </Field>
        </div>
        <ErrorMessage message={error} />
        {created && (
          <p className="ok-message" role="status">
            {created}
          </p>
        )}
        <div className="form-buttons">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create connection'}
          </button>
        </div>
      </form>
    </section>
  );
}

function ShareDialog({ connection, onDone, onCancel }: { connection: Connection; onDone: () => void; onCancel: () => void }) {
  const { users, me } = useApp();
  const [everyone, setEveryone] = useState(connection.sharedWithEveryone);
  const [selected, setSelected] = useState<Set<string>>(new Set(connection.sharedWith.map((u) => u.id)));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const candidates: User[] = users.filter((u) => u.id !== connection.owner?.id && u.id !== me.id);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await shareConnection(connection.id, { everyone, userIds: [...selected] });
      onDone();
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  }

  function toggle(id: string, on: boolean) {
    const next = new Set(selected);
    if (on) next.add(id);
    else next.delete(id);
    setSelected(next);
  }

  return (
    <Dialog title={`Share “${connection.name}”`} onClose={onCancel}>
      <form className="form" onSubmit={submit}>
        <label className="checkbox">
          <input type="checkbox" checked={everyone} onChange={(e) => setEveryone(e.target.checked)} /> Everyone in the organization
        </label>
        <fieldset className="choices user-choices" disabled={everyone}>
          <legend>Or these users</legend>
          {candidates.length === 0 && <p className="hint">No other users yet: they appear here after their first sign-in.</p>}
          {candidates.map((u) => (
            <label key={u.id}>
              <input type="checkbox" checked={selected.has(u.id)} onChange={(e) => toggle(u.id, e.target.checked)} /> {u.name || u.email}{' '}
              <span className="hint">
                {u.email}
                {u.role === 'ADMIN' ? ' · admin' : ''}
              </span>
            </label>
          ))}
        </fieldset>
        <ErrorMessage message={error} />
        <div className="form-buttons">
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save sharing'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function SetupSteps() {
  const [setup, setSetup] = useState<BigQuerySetup | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    fetchBigQuerySetup()
      .then(setSetup)
      .catch((e) => setError(errorText(e)));
  }, []);
  return (
    <section className="card" aria-labelledby="setup-title">
      <h2 id="setup-title">BigQuery setup</h2>
      <ErrorMessage message={error} />
      {setup && (
        <>
          <p>
            Credentials: {CREDENTIAL_SOURCES[setup.credentialSource]}
          </p>
          <p>
            Service account:{' '}
            {setup.serviceAccountEmail ? (
              <code>{setup.serviceAccountEmail}</code>
            ) : (
              <span className="hint">none named (gcloud user credentials, an emulator, or no credentials)</span>
            )}
          </p>
          <p>Permissions to grant on each project:</p>
          <ul className="permissions">
            {setup.requiredPermissions.map((p) => (
              <li key={p}>
                <code>{p}</code>
              </li>
            ))}
          </ul>
          <ol className="steps">
            {setup.steps.map((s) => (
              <li key={s}>{s}</li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
