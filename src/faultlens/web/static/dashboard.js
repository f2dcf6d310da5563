// The dashboard page: state lives in the URL (window, scope, source, release, environment, class, kind, q);
// every panel fetches its own JSON and renders with textContent only.

import { renderChartMessage, renderDonut, renderTrend } from './charts.js';
import {
  $, $$, ApiError, CLASS_NAMES, WINDOW_MS, WINDOW_NAMES, WINDOWS, countDelta, eventHref, formatCount, formatPercent,
  formatRelative, formatWhen, getJSON, h, rateDelta, replace,
} from './lib.js';

const API = '/api/v1';
const SCOPES = ['all', 'service', 'client', 'abort'];
const SCOPE_NAMES = { all: 'all failures', service: 'service failures', client: 'client failures', abort: 'client aborts' };
const CLASSES = ['service_failure', 'client_failure', 'client_abort'];
const PAGE_SIZE = 25;
// Servers whose event list ignores failures_only answer successes too; the table then asks for wider
// pages and keeps the failures, so paging still visits every failure exactly once.
const WIDE_PAGE_SIZE = 100;
const WIDE_KEY = 'faultlens.wideFailurePages';
let wideMode = (() => {
  try {
    return sessionStorage.getItem(WIDE_KEY) === '1';
  } catch {
    return false;
  }
})();
const DEFAULTS = { window: '24h', scope: 'service', source: '', release: '', environment: '', cls: '', kind: '', q: '' };
// Under a day the trends API has no buckets to offer, so the panel asks the summary for each slice.
const SLICES = {
  '1h': 5 * 60e3, '6h': 30 * 60e3, '24h': 3600e3, '7d': 6 * 3600e3, '14d': 86400e3, '30d': 86400e3,
  '90d': 3 * 86400e3,
};
// Windows of a day or more: GET /api/v1/trends?window=&bucket= (bucket size, label).
const TRENDS = {
  '24h': ['1h', 'hour'], '7d': ['6h', '6 hours'], '14d': ['6h', '6 hours'], '30d': ['1d', 'day'],
  '90d': ['1d', 'day'],
};

let state = { ...DEFAULTS };
let cursors = [null];
let nextCursor = null;
const tokens = {};
const knownKinds = new Set();

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const pickFrom = (name, allowed, fallback) => (allowed.includes(params.get(name)) ? params.get(name) : fallback);
  return {
    window: pickFrom('window', WINDOWS, DEFAULTS.window),
    scope: pickFrom('scope', SCOPES, DEFAULTS.scope),
    source: (params.get('source') || '').slice(0, 512),
    release: (params.get('release') || '').slice(0, 128),
    environment: (params.get('environment') || '').slice(0, 64),
    cls: pickFrom('class', CLASSES, ''),
    kind: (params.get('kind') || '').slice(0, 64),
    q: (params.get('q') || '').slice(0, 500),
  };
}

function writeUrl(push) {
  const params = new URLSearchParams();
  params.set('window', state.window);
  params.set('scope', state.scope);
  if (state.source) params.set('source', state.source);
  if (state.release) params.set('release', state.release);
  if (state.environment) params.set('environment', state.environment);
  if (state.cls) params.set('class', state.cls);
  if (state.kind) params.set('kind', state.kind);
  if (state.q) params.set('q', state.q);
  const url = `${window.location.pathname}?${params}`;
  if (url === window.location.pathname + window.location.search) return;
  if (push) window.history.pushState(null, '', url);
  else window.history.replaceState(null, '', url);
}

/**
 * Runs `load` for one panel: {value} when it is still the panel's newest request, null when a newer one
 * started meanwhile (its answer, or failure, no longer matters); errors of the newest request propagate.
 */
async function latest(panel, load) {
  const token = (tokens[panel] || 0) + 1;
  tokens[panel] = token;
  try {
    const value = await load();
    return tokens[panel] === token ? { value } : null;
  } catch (error) {
    if (tokens[panel] !== token) return null;
    throw error;
  }
}

/** ?release= and ?environment= (the events of one release / environment), as every counting API takes them. */
function releaseParams() {
  return { release: state.release || undefined, environment: state.environment || undefined };
}

function windowParams() {
  return { window: state.window, source: state.source || undefined, ...releaseParams() };
}

function windowName() {
  return WINDOW_NAMES[state.window];
}

// ---- optional panels ------------------------------------------------------------------------------
// Fed by APIs a server may not offer (alerts, unclassified fingerprints, failed tasks): they render
// whatever the endpoint answers and go quiet ("not available") on 404/503.

function statusNote(root, error) {
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
function renderAlerts(root, body) {
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

/**
 * Stateful alerts firing now, counted by level above the hints, linking to the alerts page. A server without
 * them (or a failed read) leaves the hints alone: the line stays hidden.
 */
async function loadFiringAlerts() {
  const root = $('#alerts-firing');
  let body;
  try {
    const answer = await latest('firing', () => getJSON(`${API}/alerting/alerts`, { state: 'firing' }));
    if (!answer) return;
    body = answer.value;
  } catch {
    root.hidden = true;
    return;
  }
  const firing = (body && body.counts && body.counts.firing) || {};
  const levels = ['P0', 'P1', 'P2'].filter((level) => Number(firing[level]) > 0);
  root.hidden = !levels.length;
  replace(root, levels.length ? h('a', { href: '/alerts' }, h('strong', {}, 'Firing:'),
    levels.map((level) => h('span', { class: `level-badge level-${level}`, dataset: { level } },
      `${formatCount(Number(firing[level]))} ${level}`))) : null);
}

function renderFingerprints(root, body) {
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
    // A template's id is its group's id, or answers the group it was merged into: the group page takes either
    // (its windows start at 24h, its default is 7d).
    const groupWindow = state.window === '1h' || state.window === '6h' ? '24h' : state.window;
    const href = fp.id ? `/groups/${encodeURIComponent(fp.id)}${groupWindow === '7d' ? '' : `?window=${groupWindow}`}` : null;
    return h('li', { class: 'feed-item', dataset: { groupId: asText(fp.id) } },
      h('div', { class: 'feed-main' },
        href ? h('a', { class: 'feed-code feed-link', href, title: template, dataset: { field: 'group-link' } }, template)
          : h('code', { class: 'feed-code', title: template }, template),
        h('div', { class: 'feed-meta' },
          count !== undefined ? h('strong', {}, `${formatCount(Number(count))} event${Number(count) === 1 ? '' : 's'}`) : null,
          mix.map((m) => h('span', { class: 'kind-chip' }, asText(m.failure_kind))),
          last ? h('time', { class: 'muted', datetime: asText(last), title: asText(last) }, 'last ' + formatRelative(last)) : null)));
  })));
}

/** GET /api/v1/tasks/failed: {total, items: [{task_type, source, queue, fail_time, error_message, category, ...}]}. */
function renderTasks(root, body) {
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

// ---- summary cards -------------------------------------------------------------------------------

const CARDS = [
  { metric: 'total', field: 'total', bad: false },
  { metric: 'failures', field: 'failure_count', bad: true },
  { metric: 'service', field: 'service_failure_count', bad: true },
  { metric: 'client', field: 'client_failure_count', bad: true },
  { metric: 'abort', field: 'client_abort_count', bad: true },
  { metric: 'rate', field: 'actionable_failure_rate', bad: true, rate: true },
];

function shareText(part, whole, of) {
  return whole > 0 ? `${formatPercent(part / whole)} of ${of}` : `0% of ${of}`;
}

function cardSub(metric, cur) {
  switch (metric) {
    case 'total': return `${formatCount(cur.success_count)} succeeded`;
    case 'failures': return shareText(cur.failure_count, cur.total, 'events');
    case 'service': return shareText(cur.service_failure_count, cur.failure_count, 'failures');
    case 'client': return shareText(cur.client_failure_count, cur.failure_count, 'failures');
    case 'abort': return shareText(cur.client_abort_count, cur.failure_count, 'failures');
    case 'rate': return `${formatCount(cur.actionable_failure_count)} actionable of ${formatCount(cur.total)}`;
    default: return '';
  }
}

async function loadSummary() {
  const span = WINDOW_MS[state.window];
  const now = Date.now();
  const previous = {
    since: new Date(now - 2 * span).toISOString(), until: new Date(now - span).toISOString(),
    source: state.source || undefined, ...releaseParams(),
  };
  for (const card of $$('[data-metric]')) card.setAttribute('aria-busy', 'true');
  const answer = await latest('summary', () => Promise.allSettled([
    getJSON(`${API}/stats/summary`, windowParams()), getJSON(`${API}/stats/summary`, previous),
  ]));
  if (!answer) return;
  const [cur, prev] = answer.value;
  for (const card of CARDS) {
    const root = $(`[data-metric="${card.metric}"]`);
    root.removeAttribute('aria-busy');
    const value = $('[data-role="value"]', root);
    const delta = $('[data-role="delta"]', root);
    const sub = $('[data-role="sub"]', root);
    if (cur.status !== 'fulfilled') {
      value.textContent = '—';
      sub.textContent = cur.reason instanceof ApiError && cur.reason.status === 401 ? 'API key needed' : 'unavailable';
      delta.textContent = '';
      continue;
    }
    const now = cur.value[card.field];
    value.textContent = card.rate ? formatPercent(now) : formatCount(now);
    value.dataset.value = String(now);
    sub.textContent = cardSub(card.metric, cur.value);
    if (prev.status === 'fulfilled') {
      const before = prev.value[card.field];
      const change = card.rate ? rateDelta(now, before) : countDelta(now, before);
      const tone = change.direction === 'flat' || !card.bad ? 'neutral'
        : (change.direction === 'down' ? 'good' : 'bad');
      replace(delta, h('span', { class: `delta delta-${tone}` },
        change.direction === 'up' || change.direction === 'new' ? '▲ ' : change.direction === 'down' ? '▼ ' : '',
        change.text), h('span', { class: 'muted delta-context' }, ` vs prev ${state.window}`));
      delta.title = `previous ${state.window}: ${card.rate ? formatPercent(before) : formatCount(before)}`;
    } else {
      delta.textContent = 'no comparison available';
    }
  }
}

// ---- error distribution --------------------------------------------------------------------------

async function loadDistribution() {
  const root = $('[data-testid="error-distribution"]');
  root.dataset.state = 'loading';
  root.setAttribute('aria-busy', 'true');
  for (const button of $$('[data-scope]', $('#scope-tabs'))) {
    button.setAttribute('aria-pressed', String(button.dataset.scope === state.scope));
  }
  const scope = state.scope;
  let answer;
  try {
    answer = await latest('distribution', () => getJSON(`${API}/stats/errors`, { ...windowParams(), scope }));
  } catch (error) {
    statusNote(root, error);
    root.dataset.state = 'error';
    root.removeAttribute('aria-busy');
    return;
  }
  if (!answer) return;
  const body = answer.value;
  for (const item of body.items) knownKinds.add(item.failure_kind);
  fillKindOptions();
  root.dataset.scope = scope;
  renderDonut(root, {
    items: body.items, total: body.total, scopeLabel: SCOPE_NAMES[scope], windowLabel: windowName(),
  });
  root.dataset.state = 'ready';
  root.removeAttribute('aria-busy');
}

function fillKindOptions() {
  const list = $('#kind-options');
  replace(list, [...knownKinds].sort().map((kind) => h('option', { value: kind })));
}

// ---- trend ---------------------------------------------------------------------------------------

function num(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/**
 * The trends answer ({bucket_ms, buckets: [{start, total, failures, service_failures, client_failures,
 * client_aborts, actionable_failure_rate}]}) as chart buckets; a bucket without events has no rate.
 */
function bucketsFromTrends(body) {
  const rows = Array.isArray(body.buckets) ? body.buckets : [];
  return rows.map((row) => {
    const total = num(row.total);
    return {
      t: Date.parse(row.start), failures: num(row.failures), service: num(row.service_failures),
      client: num(row.client_failures), abort: num(row.client_aborts),
      rate: total > 0 ? num(row.actionable_failure_rate) : null,
    };
  }).filter((b) => Number.isFinite(b.t)).sort((a, b) => a.t - b.t);
}

async function trendFromTrendsApi() {
  const [bucket, label] = TRENDS[state.window];
  const body = await getJSON(`${API}/trends`, { window: state.window, bucket, source: state.source || undefined,
    ...releaseParams() });
  const buckets = bucketsFromTrends(body);
  const bucketMs = num(body.bucket_ms) || (buckets.length > 1 ? buckets[1].t - buckets[0].t : 86400e3);
  return { buckets, bucketMs, bucketLabel: label, hasClasses: true };
}

/** Buckets built from one summary call per slice (aligned to the slice size so rollups answer them). */
async function trendFromSummaries() {
  const span = WINDOW_MS[state.window];
  const slice = SLICES[state.window];
  const now = Date.now();
  const slices = [];
  for (let t = Math.floor((now - span) / slice) * slice; t < now; t += slice) slices.push(t);
  const queue = [...slices];
  const results = new Map();
  let failed = null;
  // Six at a time: the browser's per-host connection limit; more would only queue in the browser.
  const worker = async () => {
    while (queue.length && !failed) {
      const t = queue.shift();
      try {
        results.set(t, await getJSON(`${API}/stats/summary`, {
          since: new Date(t).toISOString(), until: new Date(Math.min(t + slice, now)).toISOString(),
          source: state.source || undefined, ...releaseParams(),
        }));
      } catch (error) {
        failed = error;
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  if (failed) throw failed;
  const buckets = slices.map((t) => {
    const r = results.get(t);
    return {
      t, failures: r.failure_count, service: r.service_failure_count, client: r.client_failure_count,
      abort: r.client_abort_count, rate: r.total ? r.actionable_failure_rate : null,
    };
  });
  const label = slice >= 86400e3 ? (slice === 86400e3 ? 'day' : `${slice / 86400e3} days`)
    : slice >= 3600e3 ? (slice === 3600e3 ? 'hour' : `${slice / 3600e3} hours`) : `${slice / 60e3} minutes`;
  return { buckets, bucketMs: slice, bucketLabel: label, hasClasses: true };
}

/**
 * Deploy markers for the trend: each release's first event in the window (GET /api/v1/releases `markers`). The
 * chart goes without them when the server has no release list or it fails: they annotate, they never block.
 */
async function deployMarkers() {
  try {
    const body = await getJSON(`${API}/releases`, {
      window: state.window, source: state.source || undefined, environment: state.environment || undefined,
    });
    return Array.isArray(body && body.markers) ? body.markers : [];
  } catch {
    return [];
  }
}

async function loadTrend() {
  const root = $('#trend-chart');
  root.setAttribute('aria-busy', 'true');
  $('#trend-sub').textContent = `Failures by class and actionable failure rate, ${windowName()}`;
  const load = async () => {
    if (TRENDS[state.window]) {
      try {
        return await trendFromTrendsApi();
      } catch (error) {
        // A server without the trends API (404) still gets a chart from the summary API.
        if (!(error instanceof ApiError && error.unavailable)) throw error;
      }
    }
    return trendFromSummaries();
  };
  let answer;
  try {
    answer = await latest('trend', async () => {
      const [trend, markers] = await Promise.all([load(), deployMarkers()]);
      return { ...trend, markers };
    });
  } catch (error) {
    renderChartMessage(root, error instanceof ApiError && error.status === 401
      ? 'An API key is needed to show the trend.' : 'No data: the trend could not be loaded.');
    root.dataset.state = 'error';
    root.removeAttribute('aria-busy');
    return;
  }
  if (!answer) return;
  const trend = answer.value;
  root.removeAttribute('aria-busy');
  if (!trend.buckets.length) {
    renderChartMessage(root, 'No data for this window.');
    root.dataset.state = 'empty';
    return;
  }
  renderTrend(root, { ...trend, windowLabel: windowName() });
  root.dataset.state = 'ready';
}

// ---- failures table ------------------------------------------------------------------------------

function classBadge(cls) {
  return h('span', { class: `badge badge-${CLASSES.includes(cls) ? cls : 'none'}` }, CLASS_NAMES[cls] || cls);
}

function failureRow(item) {
  const href = eventHref(item.id);
  const message = item.error_message || item.error_code || '(no message)';
  const row = h('tr', { dataset: { eventId: item.id } },
    h('td', { class: 'col-when' },
      h('time', { datetime: item.occurred_at, title: item.occurred_at }, formatWhen(item.occurred_at)),
      h('span', { class: 'muted when-rel' }, formatRelative(item.occurred_at))),
    h('td', { class: 'col-source' }, h('span', { class: 'source-name', title: item.source }, item.source),
      item.operation ? h('span', { class: 'muted op-name', title: item.operation }, item.operation) : null),
    h('td', { class: 'col-class' }, classBadge(item.failure_class)),
    h('td', { class: 'col-kind' }, h('code', { class: 'kind-chip' }, item.failure_kind)),
    h('td', { class: 'col-message' }, h('a', { href, class: 'row-link', title: message }, message)),
    h('td', { class: 'col-status' }, item.http_status ? String(item.http_status) : item.status));
  // The whole row opens the event; the link inside stays the keyboard and screen-reader path.
  row.addEventListener('click', (event) => {
    if (event.target.closest('a') || window.getSelection().toString()) return;
    window.location.assign(href);
  });
  return row;
}

async function loadTable() {
  const body = $('#failures-body');
  const table = $('#failures-table');
  table.setAttribute('aria-busy', 'true');
  const params = {
    ...windowParams(), failure_class: state.cls || undefined, failure_kind: state.kind || undefined,
    q: state.q || undefined, limit: wideMode ? WIDE_PAGE_SIZE : PAGE_SIZE,
    cursor: cursors[cursors.length - 1] || undefined,
    // Asked for so the server can skip successes; rows are filtered here too for servers without it.
    failures_only: true,
  };
  let answer;
  try {
    answer = await latest('table', () => getJSON(`${API}/events`, params));
  } catch (error) {
    table.removeAttribute('aria-busy');
    const note = error instanceof ApiError && error.status === 401 ? 'An API key is needed to list failures.'
      : `Could not load failures: ${error.message}`;
    replace(body, h('tr', { class: 'empty-row' }, h('td', { colspan: 6 }, note)));
    return;
  }
  if (!answer) return;
  const page = answer.value;
  if (!wideMode && page.items.some((item) => item.failure_class === 'none')) {
    // Remembered for the tab, so later loads skip the narrow request this server cannot honour.
    wideMode = true;
    try {
      sessionStorage.setItem(WIDE_KEY, '1');
    } catch {
      /* detected again on the next load */
    }
    return loadTable();
  }
  table.removeAttribute('aria-busy');
  const items = page.items.filter((item) => item.failure_class !== 'none');
  nextCursor = page.next_cursor;
  if (!items.length) {
    replace(body, h('tr', { class: 'empty-row' }, h('td', { colspan: 6 },
      cursors.length > 1 ? 'No more failures on this page.' : `No failures match these filters in the ${windowName()}.`)));
  } else {
    replace(body, items.map(failureRow));
  }
  $('#page-prev').disabled = cursors.length <= 1;
  $('#page-next').disabled = !nextCursor;
  $('#page-label').textContent = `Page ${cursors.length}`;
  table.dataset.state = 'ready';
}

// ---- optional panels and sources -----------------------------------------------------------------

async function loadOptional(panel, path, params, render) {
  const root = $(`#${panel}`);
  root.setAttribute('aria-busy', 'true');
  try {
    const answer = await latest(panel, () => getJSON(path, params));
    if (answer) render(root, answer.value);
  } catch (error) {
    statusNote(root, error);
  } finally {
    root.removeAttribute('aria-busy');
  }
}

async function loadSources() {
  const select = $('#source-filter');
  let names = [];
  try {
    const answer = await latest('sources', () => getJSON('/ui/sources', { window: state.window }));
    if (!answer) return;
    names = answer.value.items.map((item) => item.source);
  } catch {
    names = [];
  }
  if (state.source && !names.includes(state.source)) names.unshift(state.source);
  replace(select, h('option', { value: '' }, 'All sources'), names.map((name) => h('option', { value: name }, name)));
  select.value = state.source;
}

// ---- wiring --------------------------------------------------------------------------------------

function syncControls() {
  for (const button of $$('[data-window]')) button.setAttribute('aria-pressed', String(button.dataset.window === state.window));
  $('#source-filter').value = state.source;
  $('#release-filter').value = state.release;
  $('#environment-filter').value = state.environment;
  $('#class-filter').value = state.cls;
  $('#kind-filter').value = state.kind;
  $('#q-filter').value = state.q;
  $('#range-label').textContent = `${windowName()[0].toUpperCase()}${windowName().slice(1)} · ` +
    (state.source ? `source ${state.source}` : 'all sources') +
    (state.release ? ` · release ${state.release}` : '') + (state.environment ? ` · ${state.environment}` : '');
  for (const node of $$('[data-window-name]')) node.textContent = windowName();
  // Threshold hints are judged over the selected window; burn-rate hints always over their own recent windows.
  $('#alerts-sub').textContent = `SLO hints, ${windowName()}`;
}

function resetPaging() {
  cursors = [null];
  nextCursor = null;
}

async function loadAll() {
  document.body.dataset.ready = 'false';
  syncControls();
  resetPaging();
  // The slowest answers are asked for first: the browser runs six requests per host at a time, and the
  // view is ready only when the last one lands.
  await Promise.allSettled([
    loadOptional('fingerprints', `${API}/fingerprints`, { unclassified: true, window: state.window, limit: 8 },
      renderFingerprints),
    loadOptional('alerts', `${API}/alerts`, { window: state.window, source: state.source || undefined,
      ...releaseParams() }, renderAlerts),
    loadFiringAlerts(),
    loadSummary(), loadTrend(), loadDistribution(), loadTable(), loadSources(),
    loadOptional('tasks', `${API}/tasks/failed`, { limit: 8 }, renderTasks),
  ]);
  markReady();
}

function markReady() {
  document.body.dataset.ready = 'true';
  if (!document.body.dataset.readyMs) {
    // The first view: the number the bench reads (ms since navigation start).
    performance.mark('faultlens:ready');
    document.body.dataset.readyMs = performance.now().toFixed(1);
  }
}

function update(changes, { push = true, reload = 'all' } = {}) {
  state = { ...state, ...changes };
  writeUrl(push);
  syncControls();
  if (reload === 'all') return loadAll();
  if (reload === 'distribution') return loadDistribution();
  resetPaging();
  return loadTable();
}

export function initDashboard() {
  state = readUrl();
  writeUrl(false);
  for (const button of $$('[data-window]')) {
    button.addEventListener('click', () => update({ window: button.dataset.window }));
  }
  for (const button of $$('[data-scope]', $('#scope-tabs'))) {
    button.addEventListener('click', () => {
      if (button.dataset.scope !== state.scope) update({ scope: button.dataset.scope }, { reload: 'distribution' });
    });
  }
  $('#source-filter').addEventListener('change', (event) => update({ source: event.target.value }));
  $('#release-filter').addEventListener('change', (event) => update({ release: event.target.value.trim() }));
  $('#environment-filter').addEventListener('change', (event) => update({ environment: event.target.value.trim() }));
  $('#class-filter').addEventListener('change', (event) => update({ cls: event.target.value }, { reload: 'table' }));
  $('#filters').addEventListener('submit', (event) => {
    event.preventDefault();
    update({ kind: $('#kind-filter').value.trim(), q: $('#q-filter').value.trim() }, { reload: 'table' });
  });
  $('#kind-filter').addEventListener('change', (event) => {
    update({ kind: event.target.value.trim() }, { reload: 'table' });
  });
  let typing = null;
  $('#q-filter').addEventListener('input', (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => update({ q: event.target.value.trim() }, { push: false, reload: 'table' }), 350);
  });
  $('#filters-reset').addEventListener('click', () => update({ cls: '', kind: '', q: '' }, { reload: 'table' }));
  $('#page-next').addEventListener('click', () => {
    if (!nextCursor) return;
    cursors.push(nextCursor);
    loadTable();
  });
  $('#page-prev').addEventListener('click', () => {
    if (cursors.length <= 1) return;
    cursors.pop();
    loadTable();
  });
  window.addEventListener('popstate', () => {
    state = readUrl();
    loadAll();
  });
  loadAll();
  return { reload: loadAll };
}
