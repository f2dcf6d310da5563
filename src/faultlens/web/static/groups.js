// The groups page (/groups): failure groups (the failures of one or more message templates) with their status,
// count, trend and owner, filtered and sorted by the query string so a view can be shared and the back button
// walks it. Everything comes from /api/v1/groups and lands as text, never markup. The group page (group.js)
// reuses the small views exported here: status badge, sparkline, trend change, problem notes.

import {
  $, $$, ApiError, WINDOW_NAMES, countDelta, formatCount, formatFull, formatRelative, getJSON, h, replace, s,
} from './lib.js';

export const API = '/api/v1/groups';
export const STATUSES = ['new', 'ongoing', 'regressed', 'resolved', 'ignored'];
export const GROUP_WINDOWS = ['24h', '7d', '14d', '30d', '90d'];
const SORTS = ['count', 'trend', 'first_seen', 'last_seen'];
const SORT_NAMES = { count: 'events', trend: 'trend', first_seen: 'first seen', last_seen: 'last seen' };
const PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 200;
const COLUMNS = 9;
const DEFAULTS = {
  window: '7d', status: [], source: '', release: '', environment: '', q: '', sort: 'count', order: 'desc', cursor: '',
  limit: PAGE_SIZE,
};

let state = { ...DEFAULTS };
let token = 0;
let sourcesToken = 0;

// ---- small views, shared with the group page ---------------------------------------------------------

/** A sentence for people: what went wrong and, for the usual refusals, what to do about it. */
export function explain(error, doing) {
  if (!(error instanceof ApiError)) return `Could not ${doing}: ${error && error.message ? error.message : error}`;
  if (error.status === 401) return `Could not ${doing}: an API key is needed.`;
  if (error.status === 403) return `Not allowed to ${doing}: ${error.message}. Changing a group needs a key with the admin scope.`;
  if (error.status === 0) return `Could not ${doing}: ${error.message}`;
  return `Could not ${doing}: ${error.message} (HTTP ${error.status}).`;
}

export function problem(text) {
  return h('p', { class: 'alert-problem', role: 'alert', dataset: { role: 'problem' } }, text);
}

export function quiet(text) {
  return h('p', { class: 'empty-note quiet' }, text);
}

export function statusBadge(status) {
  const known = STATUSES.includes(status) ? status : 'unknown';
  return h('span', { class: `pill group-status status-${known}`, dataset: { field: 'status', status: known } },
    String(status || 'unknown'));
}

/** A relative time ("3 h ago") with the absolute one on hover; a dash when there is none. */
function relTime(value, field) {
  if (!value) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: String(value), title: formatFull(value), dataset: field ? { field } : {} },
    formatRelative(value) || formatFull(value));
}

/**
 * trend_change (second half of the window against the first, 0.5 = +50%) as {text, direction}. Without one (no
 * events in the first half), a trend whose events all fall in the second half is "new".
 */
export function trendChange(change, trend) {
  if (change === null || change === undefined || !Number.isFinite(Number(change))) {
    const values = Array.isArray(trend) ? trend.map(Number) : [];
    const half = Math.floor(values.length / 2);
    const late = values.slice(half).reduce((a, b) => a + (b || 0), 0);
    const early = values.slice(0, half).reduce((a, b) => a + (b || 0), 0);
    return early === 0 && late > 0 ? { text: 'new', direction: 'up' } : { text: '—', direction: 'flat' };
  }
  return countDelta(1 + Number(change), 1);
}

export function trendChangeView(change, trend) {
  const delta = trendChange(change, trend);
  // More failures is worse: up is red, down is green.
  const tone = delta.direction === 'up' ? 'bad' : delta.direction === 'down' ? 'good' : 'neutral';
  return h('span', { class: `delta delta-${tone} trend-change`, dataset: { field: 'trend-change' } },
    delta.direction === 'up' ? '▲ ' : delta.direction === 'down' ? '▼ ' : '', delta.text);
}

/** A sparkline of counts per bucket: an area under a line, the last bucket marked; its numbers in the label. */
export function sparkline(trend, { width = 96, height = 26, label = '' } = {}) {
  const values = (Array.isArray(trend) ? trend : []).map((v) => (Number.isFinite(Number(v)) ? Number(v) : 0));
  const total = values.reduce((a, b) => a + b, 0);
  const max = Math.max(0, ...values);
  const text = label || (values.length
    ? `${formatCount(total)} events in ${values.length} buckets, peak ${formatCount(max)}, last ${formatCount(values[values.length - 1])}`
    : 'no trend');
  const svg = s('svg', {
    class: 'sparkline', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': text,
    dataset: { points: String(values.length), total: String(total) },
  }, s('title', { text }));
  if (!values.length) return svg;
  const pad = 2;
  const x = (i) => (values.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (values.length - 1));
  const y = (v) => (max > 0 ? height - pad - (v / max) * (height - 2 * pad) : height - pad);
  const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  svg.appendChild(s('line', { class: 'spark-base', x1: 0, x2: width, y1: height - pad, y2: height - pad }));
  if (values.length > 1) {
    svg.appendChild(s('path', {
      class: 'spark-area', d: `M${x(0).toFixed(1)},${height - pad}L${points.join('L')}L${x(values.length - 1).toFixed(1)},${height - pad}Z`,
    }));
    svg.appendChild(s('path', { class: 'spark-line', d: `M${points.join('L')}`, fill: 'none' }));
  }
  const last = values.length - 1;
  svg.appendChild(s('circle', { class: 'spark-dot', cx: x(last).toFixed(1), cy: y(values[last]).toFixed(1), r: 2.2 }));
  return svg;
}

/** Up to `shown` names, the rest counted, all of them on hover. */
function nameList(names, shown = 2) {
  const list = (Array.isArray(names) ? names : []).map(String).filter(Boolean);
  if (!list.length) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'name-list', title: list.join(', ') }, list.slice(0, shown).join(', '),
    list.length > shown ? h('span', { class: 'muted' }, ` +${list.length - shown}`) : null);
}

export function groupHref(id, windowName) {
  const path = `/groups/${encodeURIComponent(id)}`;
  return windowName && windowName !== DEFAULTS.window ? `${path}?window=${encodeURIComponent(windowName)}` : path;
}

// ---- URL state ------------------------------------------------------------------------------------

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const win = params.get('window');
  const sort = params.get('sort');
  const statuses = (params.get('status') || '').split(',').map((v) => v.trim()).filter((v) => STATUSES.includes(v));
  return {
    window: GROUP_WINDOWS.includes(win) ? win : DEFAULTS.window,
    status: STATUSES.filter((v) => statuses.includes(v)),
    source: (params.get('source') || '').slice(0, 512),
    release: (params.get('release') || '').slice(0, 128),
    environment: (params.get('environment') || '').slice(0, 64),
    q: (params.get('q') || '').slice(0, 200),
    sort: SORTS.includes(sort) ? sort : DEFAULTS.sort,
    order: params.get('order') === 'asc' ? 'asc' : 'desc',
    cursor: (params.get('cursor') || '').slice(0, 200),
    limit: Math.min(MAX_PAGE_SIZE, Math.max(1, Number.parseInt(params.get('limit'), 10) || PAGE_SIZE)),
  };
}

function urlFor(next) {
  const params = new URLSearchParams();
  if (next.window !== DEFAULTS.window) params.set('window', next.window);
  if (next.status.length) params.set('status', next.status.join(','));
  for (const name of ['source', 'release', 'environment', 'q']) if (next[name]) params.set(name, next[name]);
  if (next.sort !== DEFAULTS.sort) params.set('sort', next.sort);
  if (next.order !== DEFAULTS.order) params.set('order', next.order);
  if (next.limit !== DEFAULTS.limit) params.set('limit', String(next.limit));
  if (next.cursor) params.set('cursor', next.cursor);
  // Commas stay readable in a shared link (?status=new,ongoing).
  const query = params.toString().replace(/%2C/g, ',');
  return window.location.pathname + (query ? `?${query}` : '');
}

/** history.state.pages: the cursors of the pages before this one, so "Previous" can step back without the server. */
function writeUrl(push, pages) {
  const url = urlFor(state);
  const entry = { pages: pages || [] };
  if (push && url !== window.location.pathname + window.location.search) window.history.pushState(entry, '', url);
  else window.history.replaceState(entry, '', url);
}

function previousPages() {
  const entry = window.history.state;
  return entry && Array.isArray(entry.pages) ? entry.pages : [];
}

// ---- the table --------------------------------------------------------------------------------------

function labelCells(row) {
  const names = $$('#groups-table thead th').map((th) => th.textContent.trim());
  Array.from(row.children).forEach((cell, i) => { if (names[i]) cell.dataset.label = names[i]; });
  return row;
}

function groupRow(item) {
  const href = groupHref(item.id, state.window);
  const title = String(item.title || item.sample_message || item.id);
  const members = Number(item.members) || 1;
  const mix = Array.isArray(item.mix) ? item.mix : [];
  const row = h('tr', { dataset: { groupId: item.id, status: item.status, count: String(item.count) } },
    h('td', { class: 'col-title' },
      h('a', { href, class: 'group-link', title, dataset: { field: 'title' } }, title),
      h('span', { class: 'group-sub' },
        mix.slice(0, 2).map((m) => h('span', { class: 'kind-chip', title: `${m.failure_class}: ${formatCount(m.count)}` },
          String(m.failure_kind))),
        members > 1 ? h('span', { class: 'muted' }, `${formatCount(members)} templates`) : null,
        item.covered_by_rule === false ? h('span', { class: 'muted' }, 'no rule') : null)),
    h('td', { class: 'col-status' }, statusBadge(item.status)),
    h('td', { class: 'num', dataset: { field: 'count' } }, formatCount(Number(item.count))),
    h('td', { class: 'col-trend' }, h('span', { class: 'trend-cell' }, sparkline(item.trend), trendChangeView(item.trend_change, item.trend))),
    h('td', { class: 'col-when' }, relTime(item.first_seen, 'first-seen')),
    h('td', { class: 'col-when' }, relTime(item.last_seen, 'last-seen')),
    h('td', { class: 'col-release' }, item.first_release
      ? h('code', { class: 'env-chip', title: item.first_release }, item.first_release) : h('span', { class: 'muted' }, '—')),
    h('td', { class: 'col-sources' }, nameList(item.sources)),
    h('td', { class: 'col-assignee', dataset: { field: 'assignee' } }, item.assignee
      ? h('span', { title: item.assignee }, item.assignee) : h('span', { class: 'muted' }, '—')));
  // The whole row opens the group; the link inside stays the keyboard and screen-reader path.
  row.addEventListener('click', (event) => {
    if (event.target.closest('a, button') || window.getSelection().toString()) return;
    window.location.assign(href);
  });
  return labelCells(row);
}

function renderChips(counts) {
  const root = $('#status-chips');
  const total = STATUSES.reduce((n, st) => n + (Number(counts[st]) || 0), 0);
  const chip = (value, text, count) => {
    const on = value === '' ? !state.status.length : state.status.includes(value);
    return h('button', {
      type: 'button', class: `status-chip chip-${value || 'all'}`, 'aria-pressed': String(on), dataset: { status: value },
      onclick: () => {
        let next;
        if (value === '') next = [];
        else if (state.status.includes(value)) next = state.status.filter((v) => v !== value);
        else next = STATUSES.filter((v) => v === value || state.status.includes(v));
        update({ status: next });
      },
    }, value ? h('span', { class: `chip-dot status-dot-${value}`, 'aria-hidden': 'true' }) : null, text,
    h('span', { class: 'chip-count', dataset: { field: 'count' } }, count === null ? '' : formatCount(count)));
  };
  replace(root, chip('', 'All', total), STATUSES.map((st) => chip(st, st[0].toUpperCase() + st.slice(1),
    Number(counts[st]) || 0)));
}

function syncSortHeaders() {
  for (const th of $$('#groups-table thead th[data-sort]')) {
    const on = th.dataset.sort === state.sort;
    if (on) th.setAttribute('aria-sort', state.order === 'asc' ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
    const button = $('button', th);
    button.classList.toggle('is-sorted', on);
    button.dataset.order = on ? state.order : '';
    button.title = on ? `Sorted by ${SORT_NAMES[th.dataset.sort]}, ${state.order === 'asc' ? 'lowest' : 'highest'} first; `
      + 'click to reverse' : `Sort by ${SORT_NAMES[th.dataset.sort]}`;
  }
}

function syncControls() {
  for (const button of $$('[data-window]')) button.setAttribute('aria-pressed', String(button.dataset.window === state.window));
  $('#source-filter').value = state.source;
  $('#release-filter').value = state.release;
  $('#environment-filter').value = state.environment;
  if (document.activeElement !== $('#q-filter')) $('#q-filter').value = state.q;
  const parts = [WINDOW_NAMES[state.window]];
  if (state.source) parts.push(`source ${state.source}`);
  if (state.release) parts.push(`release ${state.release}`);
  if (state.environment) parts.push(state.environment);
  $('#groups-range').textContent = `Failures grouped by message template, ${parts.join(' · ')}`;
  syncSortHeaders();
}

function subtitle(count, more) {
  const what = state.status.length ? state.status.join(', ') : 'all statuses';
  const shown = count ? `${formatCount(count)} group${count === 1 ? '' : 's'}${more || state.cursor ? ' on this page' : ''}`
    : 'No groups';
  return `${shown} · ${what} · by ${SORT_NAMES[state.sort]}, ${state.order === 'asc' ? 'lowest' : 'highest'} first`;
}

async function loadSources() {
  const mine = ++sourcesToken;
  const select = $('#source-filter');
  let names = [];
  try {
    const answer = await getJSON('/ui/sources', { window: state.window });
    names = answer.items.map((item) => item.source);
  } catch {
    names = [];
  }
  if (mine !== sourcesToken) return;
  if (state.source && !names.includes(state.source)) names.unshift(state.source);
  replace(select, h('option', { value: '' }, 'All sources'), names.map((name) => h('option', { value: name }, name)));
  select.value = state.source;
}

async function loadList() {
  const mine = ++token;
  const table = $('#groups-table');
  const body = $('#groups-body');
  table.setAttribute('aria-busy', 'true');
  let answer;
  try {
    answer = await getJSON(API, {
      window: state.window, status: state.status.length ? state.status.join(',') : undefined,
      source: state.source || undefined, release: state.release || undefined,
      environment: state.environment || undefined, q: state.q || undefined, sort: state.sort, order: state.order,
      limit: state.limit, cursor: state.cursor || undefined,
    });
  } catch (error) {
    if (mine !== token) return;
    table.removeAttribute('aria-busy');
    table.dataset.state = 'error';
    $('#groups-sub').textContent = 'Not available';
    replace($('#groups-problem'), problem(error instanceof ApiError && error.status === 404
      ? 'Failure groups are not available on this server.' : explain(error, 'load the groups')));
    replace(body, h('tr', { class: 'empty-row' }, h('td', { colspan: COLUMNS }, 'No groups to show.')));
    $('#page-next').disabled = true;
    $('#page-prev').disabled = !state.cursor;
    return;
  }
  if (mine !== token) return;
  replace($('#groups-problem'));
  const items = Array.isArray(answer.items) ? answer.items : [];
  renderChips(answer.status_counts || {});
  $('#groups-sub').textContent = subtitle(items.length, Boolean(answer.next_cursor));
  const filtered = state.status.length || state.source || state.release || state.environment || state.q;
  replace(body, items.length ? items.map(groupRow) : h('tr', { class: 'empty-row' }, h('td', { colspan: COLUMNS },
    state.cursor ? 'No more groups on this page.'
      : filtered ? `No group matches these filters in the ${WINDOW_NAMES[state.window]}.`
        : `No failures in the ${WINDOW_NAMES[state.window]}: nothing to group.`)));
  table.removeAttribute('aria-busy');
  table.dataset.state = items.length ? 'ready' : 'empty';
  const next = $('#page-next');
  next.disabled = !answer.next_cursor;
  next.dataset.cursor = answer.next_cursor || '';
  $('#page-prev').disabled = !state.cursor;
  $('#groups-pager').hidden = !state.cursor && !answer.next_cursor;
  $('#page-label').textContent = state.cursor ? `Page ${previousPages().length + 1}` : 'Page 1';
}

// ---- wiring ---------------------------------------------------------------------------------------

async function load() {
  const root = $('#groups-root');
  document.body.dataset.ready = 'false';
  root.setAttribute('aria-busy', 'true');
  syncControls();
  await Promise.allSettled([loadList(), loadSources()]);
  root.removeAttribute('aria-busy');
  root.dataset.state = 'ready';
  document.body.dataset.ready = 'true';
}

/** A new view: any change of filter, sort or window starts again from the first page. */
function update({ pages = [], ...changes }, { push = true } = {}) {
  state = { ...state, ...changes, cursor: changes.cursor || '' };
  writeUrl(push, state.cursor ? pages : []);
  return load();
}

function readFilters() {
  return {
    release: $('#release-filter').value.trim(), environment: $('#environment-filter').value.trim(),
    q: $('#q-filter').value.trim(),
  };
}

export function initGroups() {
  state = readUrl();
  writeUrl(false, previousPages());
  for (const button of $$('[data-window]')) {
    button.addEventListener('click', () => { if (button.dataset.window !== state.window) update({ window: button.dataset.window }); });
  }
  for (const button of $$('#groups-table thead button[data-sort]')) {
    button.addEventListener('click', () => {
      const sort = button.dataset.sort;
      update(sort === state.sort ? { order: state.order === 'asc' ? 'desc' : 'asc' } : { sort, order: 'desc' });
    });
  }
  $('#source-filter').addEventListener('change', (event) => update({ source: event.target.value }));
  $('#group-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    update(readFilters());
  });
  $('#release-filter').addEventListener('change', () => update(readFilters()));
  $('#environment-filter').addEventListener('change', () => update(readFilters()));
  let typing = null;
  $('#q-filter').addEventListener('input', () => {
    clearTimeout(typing);
    // Typing replaces the history entry instead of adding one per keystroke.
    typing = setTimeout(() => { if ($('#q-filter').value.trim() !== state.q) update(readFilters(), { push: false }); }, 350);
  });
  $('#filters-reset').addEventListener('click', () => update({
    status: [], source: '', release: '', environment: '', q: '',
  }));
  $('#page-next').addEventListener('click', (event) => {
    const cursor = event.currentTarget.dataset.cursor;
    if (!cursor) return;
    update({ cursor, pages: [...previousPages(), state.cursor] });
    window.scrollTo({ top: 0 });
  });
  $('#page-prev').addEventListener('click', () => {
    // The page before this one; a shared link to a later page has no history of its own and goes to the first.
    const pages = previousPages();
    update({ cursor: pages.length ? pages[pages.length - 1] : '', pages: pages.slice(0, -1) });
  });
  window.addEventListener('popstate', () => {
    state = readUrl();
    load();
  });
  // app.js stores a key entered in the form (or forgets it) before these run: show the page as that key sees it.
  $('#auth-form').addEventListener('submit', () => load());
  $('#key-forget').addEventListener('click', () => load());
  load();
  return { reload: load };
}

if (document.body.dataset.page === 'groups') initGroups();
