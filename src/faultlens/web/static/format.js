// Number and time formatting shared by every panel; the tests mirror formatPercent exactly.

const countFormat = new Intl.NumberFormat('en-US');
const compactFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

export function formatCount(n) {
  return Number.isFinite(n) ? countFormat.format(n) : '—';
}

export function formatCompact(n) {
  return Number.isFinite(n) ? compactFormat.format(n) : '—';
}

/** A rate in [0, 1] as a percentage with one decimal; tiny non-zero rates say so instead of "0.0%". */
export function formatPercent(rate) {
  if (!Number.isFinite(rate)) return '—';
  const pct = rate * 100;
  if (pct === 0) return '0%';
  if (pct < 0.1) return '<0.1%';
  return pct.toFixed(1) + '%';
}

/** Change of a count against the previous window: {text, direction: 'up'|'down'|'flat'|'new'}. */
export function countDelta(current, previous) {
  if (!Number.isFinite(current) || !Number.isFinite(previous)) return { text: '—', direction: 'flat' };
  if (previous === 0) {
    return current === 0 ? { text: 'no change', direction: 'flat' } : { text: 'new', direction: 'up' };
  }
  const change = (current - previous) / previous;
  if (Math.abs(change) < 0.0005) return { text: 'no change', direction: 'flat' };
  const pct = Math.abs(change * 100);
  const digits = pct >= 10 ? 0 : 1;
  return { text: (change > 0 ? '+' : '−') + pct.toFixed(digits) + '%', direction: change > 0 ? 'up' : 'down' };
}

/** Change of a rate in percentage points. */
export function rateDelta(current, previous) {
  if (!Number.isFinite(current) || !Number.isFinite(previous)) return { text: '—', direction: 'flat' };
  const pp = (current - previous) * 100;
  if (Math.abs(pp) < 0.05) return { text: 'no change', direction: 'flat' };
  return { text: (pp > 0 ? '+' : '−') + Math.abs(pp).toFixed(1) + ' pp', direction: pp > 0 ? 'up' : 'down' };
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const shortTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});
const fullFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  timeZoneName: 'short',
});

export function parseTime(value) {
  const t = Date.parse(value);
  return Number.isFinite(t) ? t : null;
}

/** A table timestamp: the time of day for today, the date and time otherwise. */
export function formatWhen(value) {
  const t = parseTime(value);
  if (t === null) return '—';
  const d = new Date(t);
  const now = new Date();
  return d.toDateString() === now.toDateString() ? timeFormat.format(d) : dayTimeFormat.format(d);
}

export function formatFull(value) {
  const t = parseTime(value);
  return t === null ? '—' : fullFormat.format(new Date(t));
}

export function formatRelative(value, now = Date.now()) {
  const t = parseTime(value);
  if (t === null) return '';
  const s = Math.round((now - t) / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return m + ' min ago';
  const h = Math.round(m / 60);
  if (h < 48) return h + ' h ago';
  return Math.round(h / 24) + ' d ago';
}

/** Axis labels: times of day for short spans, dates for long ones. */
export function formatTick(ms, spanMs) {
  const d = new Date(ms);
  if (spanMs <= 36 * 3600e3) return shortTime.format(d);
  if (spanMs <= 8 * 86400e3) return dayTimeFormat.format(d);
  return dayFormat.format(d);
}

export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60e3) return (ms / 1000).toFixed(ms < 10e3 ? 2 : 1) + ' s';
  return (ms / 60e3).toFixed(1) + ' min';
}

export const WINDOWS = ['1h', '6h', '24h', '7d', '14d', '30d', '90d'];
export const WINDOW_MS = {
  '1h': 3600e3, '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 86400e3, '14d': 14 * 86400e3,
  '30d': 30 * 86400e3, '90d': 90 * 86400e3,
};
export const WINDOW_NAMES = {
  '1h': 'last hour', '6h': 'last 6 hours', '24h': 'last 24 hours', '7d': 'last 7 days', '14d': 'last 14 days',
  '30d': 'last 30 days', '90d': 'last 90 days',
};

export const CLASS_NAMES = {
  service_failure: 'Service failure', client_failure: 'Client failure', client_abort: 'Client abort', none: 'Success',
};
