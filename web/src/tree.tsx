// The OKR tree of the selected period: objectives nested by alignment, each
// with its key results, progress bars, status words, owners, values and, for
// linked items, the BigQuery mark with sync state and a Refresh button.
import { useId, useState } from 'react';
import { errorText, refreshDataSource, type DataSourceSummary, type KeyResult, type Objective } from './api';
import { BigQueryIcon } from './bigquery-icon';
import { formatDateTime, formatNumber, relativeTime, STATE_WORD } from './format';
import { ProgressBar } from './progress';

/** Which item the user opened: an objective or a key result. */
export type ItemRef = { kind: 'objective'; id: string } | { kind: 'keyResult'; id: string };

/** Above this many objectives the tree starts collapsed. */
export const EXPAND_ALL_UP_TO = 50;

interface TreeNode {
  objective: Objective;
  children: TreeNode[];
}

/** Nests the period's objectives by parent; one whose parent is outside the period is a root here. */
export function buildTree(objectives: Objective[]): TreeNode[] {
  const nodes = new Map<string, TreeNode>(objectives.map((o) => [o.id, { objective: o, children: [] }]));
  const roots: TreeNode[] = [];
  for (const o of objectives) {
    const node = nodes.get(o.id)!;
    const parent = o.parent ? nodes.get(o.parent.id) : undefined;
    if (parent && parent !== node) parent.children.push(node);
    else roots.push(node);
  }
  return roots;
}

export function Tree({
  objectives,
  onOpen,
  onChanged,
}: {
  objectives: Objective[];
  onOpen: (item: ItemRef) => void;
  /** Something was refreshed: reload the tree. */
  onChanged: () => void;
}) {
  const expandAll = objectives.length <= EXPAND_ALL_UP_TO;
  const roots = buildTree(objectives);
  return (
    <ul className="tree" aria-label="Objectives and key results">
      {roots.map((node) => (
        <ObjectiveNode key={node.objective.id} node={node} depth={0} initiallyOpen={expandAll} onOpen={onOpen} onChanged={onChanged} />
      ))}
    </ul>
  );
}

function ObjectiveNode({
  node,
  depth,
  initiallyOpen,
  onOpen,
  onChanged,
}: {
  node: TreeNode;
  depth: number;
  initiallyOpen: boolean;
  onOpen: (item: ItemRef) => void;
  onChanged: () => void;
}) {
  const { objective: o, children } = node;
  const [open, setOpen] = useState(initiallyOpen);
  const titleId = useId();
  const nestedId = useId();
  const hasNested = o.keyResults.length + children.length > 0;
  return (
    <li className="node objective-node" data-objective-id={o.id} aria-labelledby={titleId}>
      <div className="item objective">
        <div className="item-main">
          {hasNested ? (
            <button
              type="button"
              className="disclosure"
              aria-expanded={open}
              aria-controls={nestedId}
              aria-label={`${open ? 'Collapse' : 'Expand'} ${o.title}`}
              onClick={() => setOpen(!open)}
            >
              <span aria-hidden="true">{open ? '▾' : '▸'}</span>
            </button>
          ) : (
            <span className="disclosure-spacer" aria-hidden="true" />
          )}
          <div className="item-text">
            <h2 className="item-title">
              <button type="button" className="title-button" id={titleId} onClick={() => onOpen({ kind: 'objective', id: o.id })}>
                {o.title}
              </button>
              {o.dataSource && <BigQueryIcon />}
            </h2>
            <div className="meta">
              <span>{o.owner ? o.owner.name : 'No owner'}</span>
              <span>{objectiveValue(o, children.length)}</span>
            </div>
          </div>
          <ProgressBar progress={o.progress} expected={o.expectedProgress} status={o.status} label={o.title} />
        </div>
        {o.dataSource && <DataSourceLine dataSource={o.dataSource} itemTitleId={titleId} onChanged={onChanged} />}
      </div>
      {hasNested && open && (
        <ul className="nested" id={nestedId}>
          {o.keyResults.map((kr) => (
            <KeyResultNode key={kr.id} kr={kr} onOpen={onOpen} onChanged={onChanged} />
          ))}
          {children.map((child) => (
            <ObjectiveNode
              key={child.objective.id}
              node={child}
              depth={depth + 1}
              initiallyOpen={initiallyOpen}
              onOpen={onOpen}
              onChanged={onChanged}
            />
          ))}
        </ul>
      )}
    </li>
  );
}

function KeyResultNode({ kr, onOpen, onChanged }: { kr: KeyResult; onOpen: (item: ItemRef) => void; onChanged: () => void }) {
  const titleId = useId();
  return (
    <li className="node key-result-node" data-key-result-id={kr.id} aria-labelledby={titleId}>
      <div className="item key-result">
        <div className="item-main">
          <span className="kr-badge" aria-hidden="true">
            KR
          </span>
          <div className="item-text">
            <h3 className="item-title">
              <button type="button" className="title-button" id={titleId} onClick={() => onOpen({ kind: 'keyResult', id: kr.id })}>
                {kr.title}
              </button>
              {kr.dataSource && <BigQueryIcon />}
            </h3>
            <div className="meta">
              <span>{keyResultValue(kr)}</span>
              {kr.kind === 'KPI' && <span>KPI</span>}
            </div>
          </div>
          <ProgressBar progress={kr.progress} expected={kr.expectedProgress} status={kr.status} label={kr.title} />
        </div>
        {kr.dataSource && <DataSourceLine dataSource={kr.dataSource} itemTitleId={titleId} onChanged={onChanged} />}
      </div>
    </li>
  );
}

/** "120 / 500 leads" for a metric, "95 ms · target ≤ 100" for a KPI. */
export function keyResultValue(kr: KeyResult): string {
  const unit = kr.unit ? ` ${kr.unit}` : '';
  if (kr.kind === 'KPI') {
    const sign = kr.kpiCondition === 'AT_MOST' ? '≤' : '≥';
    return `${formatNumber(kr.currentValue)}${unit} · target ${sign} ${formatNumber(kr.targetValue)}${unit}`;
  }
  return `${formatNumber(kr.currentValue)} / ${formatNumber(kr.targetValue)}${unit}`;
}

export function objectiveValue(o: Objective, childCount = 0): string {
  if (o.progressMode === 'ROLL_UP') {
    const parts = [
      [o.keyResults.length, 'key result'],
      [childCount, 'objective'],
    ] as const;
    const named = parts
      .filter(([n]) => n > 0)
      .map(([n, what]) => `${n} ${what}${n === 1 ? '' : 's'}`);
    return named.length ? `Roll-up of ${named.join(' and ')}` : 'Roll-up (nothing to roll up yet)';
  }
  return `${formatNumber(o.currentValue)} / ${formatNumber(o.targetValue)}`;
}

/** Sync facts of a linked item and its Refresh button. */
export function DataSourceLine({
  dataSource: ds,
  itemTitleId,
  onChanged,
}: {
  dataSource: DataSourceSummary;
  itemTitleId?: string;
  onChanged: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const errorId = useId();

  async function refresh() {
    setBusy(true);
    setError(null);
    try {
      await refreshDataSource(ds.id);
      onChanged();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="sync-line">
      <span className="sync-source">
        <BigQueryIcon size={14} /> {ds.connection?.name ?? 'BigQuery'}
      </span>
      <span>
        {ds.lastSyncedAt ? (
          <>
            Synced <time dateTime={ds.lastSyncedAt} title={formatDateTime(ds.lastSyncedAt)}>{relativeTime(ds.lastSyncedAt)}</time>
          </>
        ) : (
          'Not synced yet'
        )}
      </span>
      <span className={`state state-${ds.state}`}>{STATE_WORD[ds.state]}</span>
      {ds.lastError && (
        <span className="sync-error">
          {ds.lastError.code}: {ds.lastError.message}
        </span>
      )}
      <button
        type="button"
        className="small"
        onClick={refresh}
        disabled={busy}
        aria-describedby={[itemTitleId, error ? errorId : undefined].filter(Boolean).join(' ') || undefined}
      >
        {busy ? 'Refreshing…' : 'Refresh'}
      </button>
      {error && (
        <span className="error inline" role="alert" id={errorId}>
          {error}
        </span>
      )}
    </div>
  );
}
