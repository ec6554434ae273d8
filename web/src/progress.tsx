// The progress bar shown for every objective and key result: coloured by
// status, with the percentage and the status as words (colour is never the
// only signal) and a marker where progress should be by now.
import type { Status } from './api';
import { formatPercent, STATUS_WORD } from './format';

const clamp = (n: number) => Math.min(100, Math.max(0, n));

export function StatusWord({ status }: { status: Status }) {
  return <span className={`status status-${status}`}>{STATUS_WORD[status]}</span>;
}

export function ProgressBar({
  progress,
  expected,
  status,
  label,
}: {
  progress: number | null;
  expected: number;
  status: Status;
  /** What the bar measures, for its accessible name. */
  label: string;
}) {
  const shown = clamp(progress ?? 0);
  const percent = formatPercent(progress);
  const expectedPercent = formatPercent(expected);
  return (
    <div className="progress">
      <div
        className={`bar bar-${status}`}
        role="progressbar"
        aria-label={`Progress of ${label}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(shown)}
        aria-valuetext={`${percent}, ${STATUS_WORD[status]}, expected ${expectedPercent} by now`}
      >
        <div className="bar-fill" style={{ width: `${shown}%` }} />
        <div
          className="bar-expected"
          style={{ left: `${clamp(expected)}%` }}
          title={`Expected by now: ${expectedPercent}`}
          aria-hidden="true"
        />
      </div>
      <span className="percent">{percent}</span>
      <StatusWord status={status} />
    </div>
  );
}
