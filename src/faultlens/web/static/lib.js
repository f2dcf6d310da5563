// Shared by every page: DOM building without HTML parsing, number and time formatting, the API client.
// One file rather than three so a first visit fetches fewer files (HTTP/1.1: six at a time per host).

// ---- DOM ------------------------------------------------------------------------------------------

// DOM building without HTML parsing: every value lands in textContent or setAttribute, so event
// strings (messages, sources, codes) can never become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

function setAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name.startsWith('on')) {
      // Handlers are functions only: a string here would be an inline handler, which CSP refuses anyway.
      if (typeof value !== 'function') throw new TypeError('event handler must be a function: ' + name);
      node.addEventListener(name.slice(2), value);
    }
    else node.setAttribute(name, value === true ? '' : String(value));
  }
}

/** h('a', {href, class}, 'text', child): an HTML element; strings become text nodes. */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/** s('path', {d}): an SVG element. */
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function replace(node, ...children) {
  clear(node);
  append(node, children);
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** A link to an event's own page; the id is path-encoded so it stays one path segment. */
export function eventHref(id) {
  return '/events/' + encodeURIComponent(id);
}

// ---- formatting -----------------------------------------------------------------------------------

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
  const ahead = t - now > 45e3; // a deadline or a next run: "in 28 min", not "just now"
  const s = Math.round(Math.abs(now - t) / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  const h = Math.round(m / 60);
  const span = m < 60 ? m + ' min' : h < 48 ? h + ' h' : Math.round(h / 24) + ' d';
  return ahead ? 'in ' + span : span + ' ago';
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
  if (ms > 0 && ms < 1) return Math.max(1, Math.round(ms * 1000)) + ' µs';  // OTLP spans time in nanoseconds
  if (ms < 10) return (Math.round(ms * 10) / 10) + ' ms';
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

// ---- API client -----------------------------------------------------------------------------------

// The one way the pages talk to the JSON API: same origin, optional bearer key, the one error body.

const KEY_NAME = 'faultlens.apiKey';
export const AUTH_EVENT = 'faultlens:auth-required';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details && typeof details === 'object' ? details : {};
  }

  /** 404 and 503 mean "this server does not offer that yet / right now": panels go quiet instead of red. */
  get unavailable() {
    return this.status === 404 || this.status === 503 || this.status === 501;
  }
}

// sessionStorage keeps the key for this tab only; it throws in some locked-down browsers.
export function storedKey() {
  try {
    return sessionStorage.getItem(KEY_NAME) || '';
  } catch {
    return '';
  }
}

export function storeKey(value) {
  try {
    if (value) sessionStorage.setItem(KEY_NAME, value);
    else sessionStorage.removeItem(KEY_NAME);
  } catch {
    /* the key then lives only until the next request fails */
  }
}

export function apiUrl(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  return url;
}

export async function getJSON(path, params, { signal } = {}) {
  return (await fetchOk(path, params, 'application/json', signal)).json();
}

/** A text answer (a stored markdown report), with the same key and error handling as getJSON. */
export async function getText(path, params, { signal } = {}) {
  return (await fetchOk(path, params, 'text/markdown, text/plain', signal)).text();
}

async function fetchOk(path, params, accept, signal) {
  const headers = { Accept: accept };
  const key = storedKey();
  if (key) headers.Authorization = 'Bearer ' + key;
  let response;
  try {
    response = await fetch(apiUrl(path, params), { headers, signal, credentials: 'same-origin' });
  } catch (error) {
    if (error && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', 'The server could not be reached.');
  }
  if (response.ok) return response;
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not the JSON error body: keep the status text */
  }
  const error = body && body.error ? body.error : {};
  const failure = new ApiError(response.status, error.code || 'http_' + response.status,
    error.message || response.statusText || 'Request failed', error.details);
  if (response.status === 401) document.dispatchEvent(new CustomEvent(AUTH_EVENT, { detail: failure.message }));
  throw failure;
}

/** A change (POST, PUT, DELETE) with a JSON body: the same key, the same error body and 401 prompt as getJSON. */
export async function sendJSON(method, path, body, { params, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const key = storedKey();
  if (key) headers.Authorization = 'Bearer ' + key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(apiUrl(path, params), {
      method, headers, signal, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', 'The server could not be reached.');
  }
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    /* no JSON body: the status says enough */
  }
  if (response.ok) return answer;
  const error = answer && answer.error ? answer.error : {};
  const failure = new ApiError(response.status, error.code || 'http_' + response.status,
    error.message || response.statusText || 'Request failed', error.details);
  if (response.status === 401) document.dispatchEvent(new CustomEvent(AUTH_EVENT, { detail: failure.message }));
  throw failure;
}
