// The detail view's chart: value and progress over time against the
// expected-progress line across the whole period (uPlot, bundled).
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { HistoryPoint } from './api';

const DAY = 86400;

/** Seconds since the epoch at the start of a YYYY-MM-DD day (UTC). */
function dayStart(date: string): number {
  return Date.parse(`${date}T00:00:00Z`) / 1000;
}

export function HistoryChart({
  history,
  periodStart,
  periodEnd,
  unit,
}: {
  history: HistoryPoint[];
  periodStart: string;
  periodEnd: string;
  unit: string;
}) {
  const container = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const start = dayStart(periodStart);
    const end = dayStart(periodEnd) + DAY;
    const points = history.map((p) => ({ ...p, t: Date.parse(p.at) / 1000 }));
    const xs = Array.from(new Set([start, end, ...points.map((p) => p.t)])).sort((a, b) => a - b);
    const byTime = new Map(points.map((p) => [p.t, p]));
    const expected = xs.map((t) => Math.min(100, Math.max(0, ((t - start) / (end - start)) * 100)));
    const progress = xs.map((t) => byTime.get(t)?.progress ?? null);
    const value = xs.map((t) => byTime.get(t)?.value ?? null);

    // A roll-up objective has no value of its own: then the chart shows progress only.
    const hasValue = value.some((v) => v !== null);
    const data: uPlot.AlignedData = hasValue ? [xs, expected, progress, value] : [xs, expected, progress];
    const valueSeries: uPlot.Series = {
      label: unit ? `Value (${unit})` : 'Value',
      scale: 'value',
      stroke: '#0f766e',
      width: 2,
      spanGaps: true,
      points: { show: true, size: 6 },
    };
    const opts: uPlot.Options = {
      width: Math.max(320, el.clientWidth),
      height: 260,
      scales: {
        x: { time: true, range: [Math.min(start, xs[0]), Math.max(end, xs[xs.length - 1])] },
        percent: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(100, max ?? 100)] },
      },
      series: [
        {},
        {
          label: 'Expected progress (%)',
          scale: 'percent',
          stroke: '#6b7280',
          dash: [6, 4],
          width: 1.5,
          points: { show: false },
          value: (_u, v) => (v == null ? '—' : `${Math.round(v)}%`),
        },
        {
          label: 'Progress (%)',
          scale: 'percent',
          stroke: '#1d4ed8',
          width: 2,
          spanGaps: true,
          points: { show: true, size: 6 },
          value: (_u, v) => (v == null ? '—' : `${Math.round(v)}%`),
        },
        ...(hasValue ? [valueSeries] : []),
      ],
      axes: [
        {},
        { scale: 'percent', label: 'Progress %', values: (_u, ticks) => ticks.map((t) => `${t}%`) },
        ...(hasValue ? [{ scale: 'value', side: 1, label: unit || 'Value', grid: { show: false } }] : []),
      ],
      legend: { live: true },
    };
    const plot = new uPlot(opts, data, el);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(320, el.clientWidth), height: 260 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [history, periodStart, periodEnd, unit]);

  return (
    <figure className="chart">
      <div ref={container} role="img" aria-label="Chart of value and progress over time against the expected progress" />
      <figcaption className="hint">
        Dashed line: where progress should be across the period ({periodStart} to {periodEnd}). The history table below lists every point.
      </figcaption>
    </figure>
  );
}
