// The signed-in dashboard: header (navigation, live indicator, user), the
// period selector and OKR tree, the detail view, and the admins'
// Connections screen. Live events update the tree in place.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { errorText, fetchObjectives, fetchUsers, type Objective, type Organization, type Status, type User } from './api';
import { AppContext, type AppContextValue } from './app-context';
import { ConnectionsScreen } from './connections';
import { DetailView } from './detail';
import { ErrorMessage } from './dialog';
import { STATUS_WORD } from './format';
import { LiveIndicator, useLiveUpdates, type ProgressEvent } from './live-updates';
import { ObjectiveForm } from './okr-forms';
import { formatPeriod, periodChoices, todayIn } from './period';
import { Tree, type ItemRef } from './tree';

type Screen = 'okrs' | 'connections';

/** Applies a progress event to the tree at once; a refetch follows for the rest. */
function applyProgress(objectives: Objective[], e: ProgressEvent): Objective[] {
  return objectives.map((o) => {
    if (o.id !== e.objectiveId) return o;
    if (e.keyResultId === null) return { ...o, progress: e.progress, status: e.status, currentValue: e.value ?? o.currentValue };
    return {
      ...o,
      keyResults: o.keyResults.map((k) =>
        k.id === e.keyResultId ? { ...k, progress: e.progress, status: e.status, currentValue: e.value } : k,
      ),
    };
  });
}

export function Dashboard({
  token,
  me,
  organization,
  onSignOut,
  onRefused,
}: {
  token: string;
  me: User;
  organization: Organization;
  onSignOut: () => void;
  /** The server refused the token (e.g. it expired). */
  onRefused: () => void;
}) {
  const today = useMemo(() => todayIn(organization.timeZone), [organization.timeZone]);
  const choices = useMemo(() => periodChoices(today), [today]);
  const [periodKey, setPeriodKey] = useState('current');
  const period = choices.find((c) => c.key === periodKey) ?? choices[0];
  const [objectives, setObjectives] = useState<Objective[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [users, setUsers] = useState<User[]>([me]);
  const [version, setVersion] = useState(0);
  const [screen, setScreen] = useState<Screen>('okrs');
  const [open, setOpen] = useState<ItemRef | null>(null);
  const [creating, setCreating] = useState(false);
  const loadSeq = useRef(0);
  const reloadTimer = useRef<number | undefined>(undefined);

  const load = useCallback(() => {
    const seq = ++loadSeq.current;
    fetchObjectives(period.from, period.to)
      .then((list) => {
        if (seq !== loadSeq.current) return;
        setObjectives(list);
        setLoadError(null);
        setVersion((v) => v + 1);
      })
      .catch((e) => seq === loadSeq.current && setLoadError(errorText(e)));
  }, [period.from, period.to]);

  useEffect(load, [load]);
  useEffect(() => {
    fetchUsers()
      .then(setUsers)
      .catch(() => setUsers([me]));
  }, [me]);

  /** Coalesces bursts of events into one refetch. */
  const reloadSoon = useCallback(() => {
    window.clearTimeout(reloadTimer.current);
    reloadTimer.current = window.setTimeout(load, 250);
  }, [load]);
  useEffect(() => () => window.clearTimeout(reloadTimer.current), []);

  const live = useLiveUpdates(token, {
    progress: (e) => {
      setObjectives((list) => (list ? applyProgress(list, e) : list));
      reloadSoon();
    },
    sync: () => reloadSoon(),
    reconnected: () => reloadSoon(),
    refused: onRefused,
  });

  const context: AppContextValue = {
    me,
    organization,
    users,
    objectives: objectives ?? [],
    period,
    version,
    reload: load,
  };

  return (
    <AppContext.Provider value={context}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="brand">
          <img src="/favicon.svg" alt="" width={24} height={24} />
          <span>okr-pulse</span>
          <span className="org">{organization.name}</span>
        </div>
        <nav aria-label="Main">
          <button type="button" className="nav-button" aria-current={screen === 'okrs' ? 'page' : undefined} onClick={() => setScreen('okrs')}>
            OKRs
          </button>
          {me.role === 'ADMIN' && (
            <button
              type="button"
              className="nav-button"
              aria-current={screen === 'connections' ? 'page' : undefined}
              onClick={() => setScreen('connections')}
            >
              Connections
            </button>
          )}
          <a className="nav-button" href="/graphql">
            GraphiQL
          </a>
        </nav>
        <div className="session">
          <LiveIndicator state={live} />
          <span className="who" title={me.email}>
            {me.name || me.email}
            {me.role === 'ADMIN' && <span className="role">admin</span>}
          </span>
          <button type="button" className="small" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {screen === 'connections' && me.role === 'ADMIN' ? (
          <ConnectionsScreen />
        ) : (
          <>
            <div className="toolbar">
              <div>
                <h1>Objectives and key results</h1>
                <p className="hint period-hint">
                  {periodKey === 'current'
                    ? `Every objective whose period includes today (${formatPeriod(today, today)})`
                    : `Objectives overlapping ${formatPeriod(period.from, period.to)}`}
                </p>
              </div>
              <div className="toolbar-controls">
                <div className="inline-field">
                  <label htmlFor="period">Period</label>
                  <select id="period" value={periodKey} onChange={(e) => setPeriodKey(e.target.value)}>
                    {choices.map((c) => (
                      <option key={c.key} value={c.key}>
                        {c.label}
                      </option>
                    ))}
                  </select>
                </div>
                <button type="button" className="primary" onClick={() => setCreating(true)}>
                  New objective
                </button>
              </div>
            </div>
            <ErrorMessage message={loadError} />
            {objectives === null && !loadError && <p>Loading objectives…</p>}
            {objectives && <Summary objectives={objectives} />}
            {objectives && objectives.length === 0 && (
              <div className="card empty">
                <p>No objectives in this period yet.</p>
              </div>
            )}
            {objectives && objectives.length > 0 && <Tree objectives={objectives} onOpen={setOpen} onChanged={load} />}
          </>
        )}
      </main>
      {open && <DetailView item={open} onClose={() => setOpen(null)} />}
      {creating && (
        <ObjectiveForm
          objectives={objectives ?? []}
          users={users}
          me={me}
          defaultPeriod={periodKey === 'current' ? choices[3] : period}
          onCancel={() => setCreating(false)}
          onDone={() => {
            setCreating(false);
            load();
          }}
        />
      )}
    </AppContext.Provider>
  );
}

/** Counts by status, as words with numbers. */
function Summary({ objectives }: { objectives: Objective[] }) {
  const counts: Record<Status, number> = { ON_TRACK: 0, BEHIND: 0, AT_RISK: 0, NOT_STARTED: 0 };
  for (const o of objectives) counts[o.status]++;
  const order: Status[] = ['ON_TRACK', 'BEHIND', 'AT_RISK', 'NOT_STARTED'];
  return (
    <p className="summary">
      <span>
        {objectives.length} objective{objectives.length === 1 ? '' : 's'}
      </span>
      {order.map((s) => (
        <span key={s} className={`chip chip-${s}`}>
          {STATUS_WORD[s]}: {counts[s]}
        </span>
      ))}
    </p>
  );
}
