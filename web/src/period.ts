// Periods: "today" in the organization's time zone and calendar quarters for
// the period selector.

/** Today's date (YYYY-MM-DD) in the given IANA time zone. */
export function todayIn(timeZone: string, now = new Date()): string {
  try {
    // en-CA formats dates as YYYY-MM-DD.
    return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
  } catch {
    return now.toISOString().slice(0, 10);
  }
}

export interface PeriodChoice {
  /** Stable value for the <select>. */
  key: string;
  label: string;
  from: string;
  to: string;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** Last day of the month (1-based month). */
function lastDay(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The quarter containing `date` and the one `offset` quarters away. */
export function quarter(date: string, offset: number): PeriodChoice {
  const year = Number(date.slice(0, 4));
  const month = Number(date.slice(5, 7));
  const index = year * 4 + Math.floor((month - 1) / 3) + offset;
  const y = Math.floor(index / 4);
  const q = index - y * 4; // 0..3
  const startMonth = q * 3 + 1;
  const endMonth = startMonth + 2;
  return {
    key: `${y}-Q${q + 1}`,
    label: `Q${q + 1} ${y}`,
    from: `${y}-${pad(startMonth)}-01`,
    to: `${y}-${pad(endMonth)}-${pad(lastDay(y, endMonth))}`,
  };
}

/** The selector's choices: "current" (periods that include today), then quarters around today. */
export function periodChoices(today: string): PeriodChoice[] {
  const choices: PeriodChoice[] = [{ key: 'current', label: 'Current', from: today, to: today }];
  for (let offset = -2; offset <= 2; offset++) {
    const q = quarter(today, offset);
    choices.push({ ...q, label: offset === 0 ? `${q.label} (this quarter)` : q.label });
  }
  return choices;
}

/** "Oct 1 – Dec 31, 2026" for a period. */
export function formatPeriod(start: string, end: string): string {
  const fmt = (d: string, withYear: boolean) =>
    new Date(`${d}T00:00:00Z`).toLocaleDateString('en-US', {
      timeZone: 'UTC',
      month: 'short',
      day: 'numeric',
      ...(withYear ? { year: 'numeric' } : {}),
    });
  if (start === end) return fmt(start, true);
  const sameYear = start.slice(0, 4) === end.slice(0, 4);
  return `${fmt(start, !sameYear)} – ${fmt(end, true)}`;
}
