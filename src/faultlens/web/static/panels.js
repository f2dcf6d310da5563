// Panels fed by optional APIs (alerts, unclassified fingerprints, failed tasks): they render whatever
// the endpoint answers and go quiet ("not available") when the server does not offer it (404/503).

import { h, replace } from './dom.js';
import { formatCount, formatRelative, formatWhen } from './format.js';

export function statusNote(root, error) {
  if (error && error.unavailable) {
    replace(root, h('p', { class: 'empty-note quiet', dataset: { state: 'unavailable' } },
      'Not available on this server.'));
  } else if (error && error.status === 401) {
    replace(root, h('p', { class: 'empty-note', dataset: { state: 'unauthorized' } },
      'An API key is needed to show this.'));
  } else {
    replace(root, h('p', { class: 'empty-note error-note', dataset: { state: 'error' } },
      'Could not load: ' + (error && error.message ? error.message : 'unknown error')));
  }
}

function pick(obj, ...names) {
  for (const name of names) {
    const value = obj ? obj[name] : undefined;
    if (value !== undefined && value !== null && value !== '') return value;
  }
  return undefined;
}

function itemsOf(body, ...names) {
  if (Array.isArray(body)) return body;
  for (const name of names) if (body && Array.isArray(body[name])) return body[name];
  return [];
}

function asText(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

const LEVEL_ORDER = { critical: 0, warn: 1, warning: 1, info: 2 };

function humanize(code) {
  const text = asText(code).replace(/[_-]+/g, ' ').trim();
  return text ? text[0].toUpperCase() + text.slice(1) : 'Alert';
}

/** GET /api/v1/alerts: {status: ok|warn|critical, total, hints: [{code, level, source, observed, threshold, window, message}]}. */
export function renderAlerts(root, body) {
  const hints = itemsOf(body, 'hints', 'items', 'alerts');
  const status = asText(body && body.status) || (hints.length ? 'warn' : 'ok');
  const head = h('div', { class: 'alert-status' },
    h('span', { class: `pill sev-${status.replace(/[^a-z]/g, '') || 'ok'}`, dataset: { field: 'alert-status' } },
      status === 'ok' ? 'OK' : status),
    h('span', { class: 'muted' }, hints.length ? `${formatCount(hints.length)} hint${hints.length === 1 ? '' : 's'}`
      : 'No objective is at risk.'));
  if (!hints.length) {
    replace(root, h('div', { dataset: { state: 'empty' } }, head));
    return;
  }
  const sorted = [...hints].sort((a, b) =>
    (LEVEL_ORDER[asText(pick(a, 'level', 'severity')).toLowerCase()] ?? 3) -
    (LEVEL_ORDER[asText(pick(b, 'level', 'severity')).toLowerCase()] ?? 3));
  replace(root, head, h('ul', { class: 'feed', dataset: { state: 'ready' } }, sorted.map((hint) => {
    const level = asText(pick(hint, 'level', 'severity') ?? 'info').toLowerCase();
    const source = asText(pick(hint, 'source'));
    const message = asText(pick(hint, 'message', 'summary', 'description'));
    const window = asText(pick(hint, 'window'));
    return h('li', { class: 'feed-item' },
      h('span', { class: `pill sev-${level.replace(/[^a-z]/g, '') || 'info'}` }, level),
      h('div', { class: 'feed-main' },
        h('div', { class: 'feed-title' }, humanize(pick(hint, 'code', 'title', 'name')),
          source ? h('span', { class: 'muted' }, ' · ' + source) : null),
        message ? h('div', { class: 'feed-text' }, message) : null,
        window ? h('div', { class: 'feed-meta muted' }, `window ${window}`) : null));
  })));
}

export function renderFingerprints(root, body) {
  const items = itemsOf(body, 'items', 'fingerprints');
  if (!items.length) {
    replace(root, h('p', { class: 'empty-note ok-note', dataset: { state: 'empty' } },
      'Every failure in this window matched a rule.'));
    return;
  }
  replace(root, h('ul', { class: 'feed', dataset: { state: 'ready' } }, items.slice(0, 8).map((fp) => {
    const template = asText(pick(fp, 'template', 'sample_message', 'message') ?? fp.id);
    const count = pick(fp, 'count', 'events', 'event_count', 'occurrences');
    const last = pick(fp, 'last_seen', 'last_seen_at');
    const mix = Array.isArray(fp.mix) ? fp.mix.slice(0, 2) : [];
    return h('li', { class: 'feed-item' },
      h('div', { class: 'feed-main' },
        h('code', { class: 'feed-code', title: template }, template),
        h('div', { class: 'feed-meta' },
          count !== undefined ? h('strong', {}, `${formatCount(Number(count))} event${Number(count) === 1 ? '' : 's'}`) : null,
          mix.map((m) => h('span', { class: 'kind-chip' }, asText(m.failure_kind))),
          last ? h('time', { class: 'muted', datetime: asText(last), title: asText(last) }, 'last ' + formatRelative(last)) : null)));
  })));
}

/** GET /api/v1/tasks/failed: {total, items: [{task_type, source, queue, fail_time, error_message, category, ...}]}. */
export function renderTasks(root, body) {
  const items = itemsOf(body, 'items', 'tasks');
  if (!items.length) {
    replace(root, h('p', { class: 'empty-note ok-note', dataset: { state: 'empty' } }, 'No failed tasks.'));
    return;
  }
  const total = Number(body && body.total);
  replace(root, h('ul', { class: 'feed', dataset: { state: 'ready' } }, items.slice(0, 8).map((task) => {
    const name = asText(pick(task, 'task_type', 'name', 'task_id', 'id') ?? 'task');
    const error = asText(pick(task, 'error_message', 'error_code', 'exception_type'));
    const where = asText(pick(task, 'source', 'queue', 'kind'));
    const when = pick(task, 'fail_time', 'failed_at', 'start_time');
    const kind = pick(task, 'category', 'failure_kind');
    const retries = pick(task, 'retry_count');
    return h('li', { class: 'feed-item' },
      h('div', { class: 'feed-main' },
        h('div', { class: 'feed-title' }, h('code', {}, name), where ? h('span', { class: 'muted' }, ' · ' + where) : null),
        error ? h('div', { class: 'feed-text clamp-2', title: error }, error) : null,
        h('div', { class: 'feed-meta' }, kind ? h('span', { class: 'kind-chip' }, asText(kind)) : null,
          retries !== undefined ? h('span', { class: 'muted' }, `retries ${asText(retries)}`) : null)),
      when ? h('time', { class: 'feed-time', datetime: asText(when), title: formatWhen(when) }, formatRelative(when)) : null);
  })), Number.isFinite(total) && total > items.length
    ? h('p', { class: 'feed-more muted' }, `Showing ${items.length} of ${formatCount(total)} failed tasks.`) : null);
}
