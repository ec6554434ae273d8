// How numbers, times and statuses read on screen.
import type { DataSourceState, Status } from './api';

export const STATUS_WORD: Record<Status, string> = {
  ON_TRACK: 'On track',
  BEHIND: 'Behind',
  AT_RISK: 'At risk',
  NOT_STARTED: 'Not started',
};

export const STATE_WORD: Record<DataSourceState, string> = {
  OK: 'OK',
  PENDING: 'Pending',
  ERROR: 'Error',
  PAUSED: 'Paused',
};

const numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

/** 1234.5 → "1,234.5"; null → "—". */
export function formatNumber(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : numberFormat.format(value);
}

/** Progress as the whole percentage shown beside a bar ("60%"); null → "0%". */
export function formatPercent(value: number | null | undefined): string {
  return `${Math.round(value ?? 0)}%`;
}

/** "3 min ago", "in 2 h", "just now". */
export function relativeTime(iso: string, now = Date.now()): string {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  const abs = Math.abs(seconds);
  const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto', style: 'short' });
  if (abs < 45) return 'just now';
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), 'hour');
  return rtf.format(Math.round(seconds / 86400), 'day');
}

/** A full local date and time, for titles and tables. */
export function formatDateTime(iso: string): string {
  return new Date(iso).toLocaleString('en-US', {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** 10737418240 → "10 GiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** 3600 → "1 h", 900 → "15 min". */
export function formatInterval(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
