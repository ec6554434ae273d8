// The detail view of one objective or key result: its numbers, the chart of
// value and progress over time, the sync runs of its query, its history, and
// the actions (check in, edit, link a query, pause, unlink, add).
import { useEffect, useState } from 'react';
import {
  errorText,
  fetchKeyResultDetail,
  fetchObjectiveDetail,
  unlinkDataSource,
  updateDataSource,
  type DataSourceSummary,
  type Detail,
  type KeyResult,
  type Objective,
} from './api';
import { useApp } from './app-context';
import { HistoryChart } from './chart';
import { Dialog, ErrorMessage } from './dialog';
import { formatBytes, formatDateTime, formatInterval, formatNumber, STATUS_WORD } from './format';
import { LinkDialog } from './link-dialog';
import { CheckInForm, KeyResultForm, ObjectiveForm } from './okr-forms';
import { formatPeriod } from './period';
import { ProgressBar } from './progress';
import { DataSourceLine, keyResultValue, objectiveValue, type ItemRef } from './tree';

type SubDialog = 'check-in' | 'edit' | 'link' | 'add-key-result' | 'add-objective' | null;

export function DetailView({ item, onClose }: { item: ItemRef; onClose: () => void }) {
  const app = useApp();
  const [detail, setDetail] = useState<Detail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [sub, setSub] = useState<SubDialog>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  // The live numbers come from the tree; the history and runs from here.
  let objective: Objective | undefined;
  let keyResult: KeyResult | undefined;
  if (item.kind === 'objective') {
    objective = app.objectives.find((o) => o.id === item.id);
  } else {
    for (const o of app.objectives) {
      keyResult = o.keyResults.find((k) => k.id === item.id);
      if (keyResult) {
        objective = o;
        break;
      }
    }
  }
  const current = keyResult ?? objective;

  useEffect(() => {
    let stale = false;
    const load = item.kind === 'objective' ? fetchObjectiveDetail(item.id) : fetchKeyResultDetail(item.id);
    load
      .then((d) => {
        if (!stale) {
          setDetail(d);
          setError(d ? null : 'This item no longer exists.');
        }
      })
      .catch((e) => !stale && setError(errorText(e)));
    return () => {
      stale = true;
    };
  }, [item.kind, item.id, app.version]);

  const title = current?.title ?? detail?.title ?? 'Loading…';
  const dataSource: DataSourceSummary | null = current?.dataSource ?? null;
  const target = keyResult ? { keyResultId: keyResult.id } : { objectiveId: item.id };
  const closeSub = () => setSub(null);
  const doneSub = () => {
    setSub(null);
    app.reload();
  };

  async function act(action: () => Promise<unknown>) {
    setActionError(null);
    try {
      await action();
      app.reload();
    } catch (e) {
      setActionError(errorText(e));
    }
  }

  const canCheckIn = keyResult || (objective && objective.progressMode !== 'ROLL_UP');
  const canLink = keyResult || (objective && objective.progressMode === 'DATA_SOURCE');

  return (
    <Dialog title={title} onClose={onClose} wide>
      {!current && !error && <p>{detail ? 'This item is not in the selected period.' : 'Loading…'}</p>}
      <ErrorMessage message={error} />
      {current && (
        <>
          <p className="detail-kind">
            {keyResult ? `Key result of “${objective?.title}”` : 'Objective'}
            {objective && ` · ${formatPeriod(objective.periodStart, objective.periodEnd)}`}
            {objective?.owner && ` · Owner: ${objective.owner.name}`}
          </p>
          {objective && !keyResult && objective.description && <p>{objective.description}</p>}
          <div className="detail-progress">
            <ProgressBar progress={current.progress} expected={current.expectedProgress} status={current.status} label={current.title} />
            <span className="meta">
              {keyResult ? keyResultValue(keyResult) : objectiveValue(objective!)} · expected {Math.round(current.expectedProgress)}% by now
            </span>
          </div>
          {dataSource && <DataSourceLine dataSource={dataSource} onChanged={app.reload} />}
          <div className="actions" role="group" aria-label="Actions">
            {canCheckIn && (
              <button type="button" onClick={() => setSub('check-in')}>
                Check in
              </button>
            )}
            <button type="button" onClick={() => setSub('edit')}>
              Edit
            </button>
            {canLink && (
              <button type="button" onClick={() => setSub('link')}>
                {dataSource ? 'Change query' : 'Link query'}
              </button>
            )}
            {dataSource && (
              <button
                type="button"
                onClick={() => act(() => updateDataSource(dataSource.id, { paused: dataSource.state !== 'PAUSED' }))}
              >
                {dataSource.state === 'PAUSED' ? 'Resume syncing' : 'Pause syncing'}
              </button>
            )}
            {dataSource && (
              <button
                type="button"
                onClick={() => {
                  if (window.confirm('Unlink this query? The values it recorded stay in the history.')) {
                    void act(() => unlinkDataSource(dataSource.id));
                  }
                }}
              >
                Unlink query
              </button>
            )}
            {!keyResult && (
              <>
                <button type="button" onClick={() => setSub('add-key-result')}>
                  Add key result
                </button>
                <button type="button" onClick={() => setSub('add-objective')}>
                  Add aligned objective
                </button>
              </>
            )}
          </div>
          <ErrorMessage message={actionError} />
        </>
      )}

      {detail && (
        <>
          <h3>Progress over time</h3>
          {detail.history.length === 0 ? (
            <p className="hint">No history yet: check in a value or link a query.</p>
          ) : (
            <HistoryChart
              history={detail.history}
              periodStart={detail.periodStart}
              periodEnd={detail.periodEnd}
              unit={keyResult?.unit ?? ''}
            />
          )}
          {detail.dataSource && <SyncRuns dataSource={detail.dataSource} />}
          {detail.history.length > 0 && (
            <details className="history">
              <summary>
                History ({detail.history.length} point{detail.history.length === 1 ? '' : 's'})
              </summary>
              <table>
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Value</th>
                    <th scope="col">Progress</th>
                    <th scope="col">Expected</th>
                    <th scope="col">Status</th>
                    <th scope="col">Source</th>
                    <th scope="col">Note</th>
                  </tr>
                </thead>
                <tbody>
                  {[...detail.history].reverse().map((p, i) => (
                    <tr key={i}>
                      <td>{formatDateTime(p.at)}</td>
                      <td className="num">{formatNumber(p.value)}</td>
                      <td className="num">{p.progress === null ? '—' : `${Math.round(p.progress)}%`}</td>
                      <td className="num">{Math.round(p.expectedProgress)}%</td>
                      <td>{STATUS_WORD[p.status]}</td>
                      <td>{p.source.replace('_', ' ').toLowerCase()}</td>
                      <td>{p.note ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </details>
          )}
        </>
      )}

      {sub === 'check-in' && current && (
        <CheckInForm target={target} title={current.title} linked={!!dataSource} onDone={doneSub} onCancel={closeSub} />
      )}
      {sub === 'link' && current && (
        <LinkDialog target={target} title={current.title} existing={dataSource} onDone={doneSub} onCancel={closeSub} />
      )}
      {sub === 'edit' && keyResult && objective && (
        <KeyResultForm keyResult={keyResult} objective={objective} onDone={doneSub} onCancel={closeSub} />
      )}
      {sub === 'edit' && !keyResult && objective && (
        <ObjectiveForm
          objective={objective}
          objectives={app.objectives}
          users={app.users}
          me={app.me}
          defaultPeriod={app.period}
          onDone={doneSub}
          onCancel={closeSub}
        />
      )}
      {sub === 'add-key-result' && objective && (
        <KeyResultForm objective={objective} onDone={doneSub} onCancel={closeSub} />
      )}
      {sub === 'add-objective' && objective && (
        <ObjectiveForm
          parentId={objective.id}
          objectives={app.objectives}
          users={app.users}
          me={app.me}
          defaultPeriod={{ from: objective.periodStart, to: objective.periodEnd }}
          onDone={doneSub}
          onCancel={closeSub}
        />
      )}
    </Dialog>
  );
}

function SyncRuns({ dataSource }: { dataSource: NonNullable<Detail['dataSource']> }) {
  return (
    <section aria-labelledby="sync-runs-title">
      <h3 id="sync-runs-title">Sync runs</h3>
      <p className="hint">
        Every {formatInterval(dataSource.syncIntervalSeconds)} via {dataSource.connection?.name ?? 'a removed connection'} · next{' '}
        {formatDateTime(dataSource.nextSyncAt)}
      </p>
      <pre className="sql-view">{dataSource.sql}</pre>
      {dataSource.syncRuns.length === 0 ? (
        <p className="hint">No runs yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Outcome</th>
              <th scope="col">Value</th>
              <th scope="col">Bytes processed</th>
              <th scope="col">Duration</th>
              <th scope="col">Job</th>
            </tr>
          </thead>
          <tbody>
            {dataSource.syncRuns.map((run) => (
              <tr key={run.startedAt + (run.jobId ?? '')}>
                <td>{formatDateTime(run.startedAt)}</td>
                <td>
                  <span className={`outcome outcome-${run.outcome}`}>{run.outcome.toLowerCase()}</span>
                  {run.error && (
                    <div className="sync-error">
                      {run.error.code}: {run.error.message}
                    </div>
                  )}
                </td>
                <td className="num">{formatNumber(run.value)}</td>
                <td className="num">{formatBytes(run.bytesProcessed)}</td>
                <td className="num">{run.durationMs} ms</td>
                <td className="job">{run.jobId ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
