// The alerts page (/alerts): the tenant's stateful alerts, firing first, with acknowledgements, silences and
// dead-lettered notifications. Everything shown comes from /api/v1/alerting/* and lands as text, never markup.

import {
  $, ApiError, AUTH_EVENT, apiUrl, formatCount, formatFull, formatRelative, getJSON, h, parseTime, replace,
  storedKey,
} from './lib.js';

const API = '/api/v1/alerting';
const LEVELS = ['P0', 'P1', 'P2'];
const STATE_ORDER = { firing: 0, pending: 1, resolved: 2, inactive: 3 };
const DURATIONS = [['1h', '1 hour'], ['4h', '4 hours'], ['1d', '1 day']];
// Labels every alert carries and the card already shows as its badge and title.
const SHOWN_LABELS = new Set(['alertname', 'level']);

const view = { showResolved: false, target: '', expanded: new Set(), names: new Map(), deadNote: '' };

// ---- the API: getJSON for reads, send() for the changes (same key, same error body) -------------------

async function send(method, path, body) {
  const headers = { Accept: 'application/json' };
  const key = storedKey();
  if (key) headers.Authorization = 'Bearer ' + key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(apiUrl(path), {
      method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
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
    error.message || response.statusText || 'Request failed');
  if (response.status === 401) document.dispatchEvent(new CustomEvent(AUTH_EVENT, { detail: failure.message }));
  throw failure;
}

/** A sentence for people: what went wrong and, for the usual refusals, what to do about it. */
function explain(error, doing) {
  if (!(error instanceof ApiError)) return `Could not ${doing}: ${error && error.message ? error.message : error}`;
  if (error.status === 403) {
    return `Not allowed to ${doing}: ${error.message}. Changing alerts needs an API key with the admin scope.`;
  }
  if (error.status === 401) return `Could not ${doing}: an API key is needed.`;
  if (error.status === 0) return `Could not ${doing}: ${error.message}`;
  return `Could not ${doing}: ${error.message} (HTTP ${error.status}).`;
}

function problem(text) {
  return h('p', { class: 'alert-problem', role: 'alert', dataset: { role: 'problem' } }, text);
}

// ---- small views ------------------------------------------------------------------------------------

function levelBadge(level) {
  const known = LEVELS.includes(level) ? level : 'unknown';
  return h('span', { class: `level-badge level-${known}`, dataset: { field: 'level' } }, String(level || '?'));
}

function statePill(state) {
  const known = state in STATE_ORDER ? state : 'inactive';
  return h('span', { class: `pill alert-state state-${known}`, dataset: { field: 'state' } }, String(state));
}

function timeWithRelative(value, { future = false } = {}) {
  if (!value) return '—';
  return [h('span', { class: 'rel-time' }, future ? formatUntil(value) : formatRelative(value)), ' ',
    h('time', { class: 'muted abs-time', datetime: value, title: value }, `(${formatFull(value)})`)];
}

function formatUntil(value, now = Date.now()) {
  const t = parseTime(value);
  if (t === null) return '';
  if (t <= now) return formatRelative(value, now);
  const m = Math.round((t - now) / 60e3);
  if (m < 60) return `in ${Math.max(m, 1)} min`;
  const hours = Math.round(m / 60);
  return hours < 48 ? `in ${hours} h` : `in ${Math.round(hours / 24)} d`;
}

/**
 * A runbook comes from the routing file, so it is treated as untrusted: only http(s) URLs and relative
 * links become links; anything else (javascript:, data:, ...) is shown as plain text.
 */
// A runbook comes from a config file: only absolute http(s) URLs and paths of this server become links. A
// repository path such as the default docs/runbook.md#<code> is shown as text (this server does not serve docs/).
export function safeHref(value) {
  const text = String(value || '').trim();
  if (!text) return null;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text);
  if (scheme && !/^https?$/i.test(scheme[1])) return null;
  if (!scheme && !(text.startsWith('/') && !text.startsWith('//'))) return null;
  try {
    const url = new URL(text, window.location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function runbook(value) {
  if (!value) return h('span', { class: 'muted' }, 'none');
  const href = safeHref(value);
  if (!href) return h('code', { class: 'runbook-text', title: 'not a web link' }, String(value));
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer', class: 'runbook-link', dataset: { field: 'runbook' } },
    String(value));
}

function labelChips(labels) {
  const entries = Object.entries(labels || {}).filter(([name]) => !SHOWN_LABELS.has(name));
  if (!entries.length) return null;
  return h('ul', { class: 'label-chips', 'aria-label': 'Labels', dataset: { field: 'labels' } },
    entries.map(([name, value]) => h('li', { class: 'label-chip', title: `${name}=${value}` },
      h('span', { class: 'label-name' }, name), '=', h('span', { class: 'label-value' }, String(value)))));
}

function fact(label, content, name) {
  return [h('dt', {}, label), h('dd', { dataset: name ? { field: name } : {} }, content)];
}

function lastChange(change) {
  const parts = [];
  if (change && change.release) {
    parts.push(h('span', {}, 'release ', h('code', {}, change.release)),
      change.release_seen_at ? h('span', { class: 'muted' }, ` seen ${formatRelative(change.release_seen_at)}`) : null);
  }
  if (change && change.rule_version) {
    if (parts.length) parts.push(' · ');
    parts.push(h('span', {}, 'rules ', h('code', {}, change.rule_version)));
  }
  return parts.length ? parts : h('span', { class: 'muted' }, 'nothing recorded');
}

function acknowledgement(ack) {
  if (!ack) return h('span', { class: 'muted' }, 'not acknowledged');
  return [h('strong', { dataset: { field: 'ack-by' } }, ack.by), ' · ', timeWithRelative(ack.at),
    ack.comment ? h('span', { class: 'ack-comment' }, ` — ${ack.comment}`) : null];
}

/** Matchers that silence this alert and no other: its name plus its other labels, level left out. */
export function silenceMatchers(alert) {
  const matchers = [{ name: 'alertname', value: alert.name, isRegex: false, isEqual: true }];
  for (const [name, value] of Object.entries(alert.labels || {})) {
    if (name === 'alertname' || name === 'level') continue;
    matchers.push({ name, value: String(value), isRegex: false, isEqual: true });
  }
  return matchers;
}

function matcherText(m) {
  return `${m.name}${m.isEqual === false ? '!' : ''}${m.isRegex ? '=~' : '='}${m.value}`;
}

// ---- one alert --------------------------------------------------------------------------------------

function silenceForm(alert, item) {
  const matchers = silenceMatchers(alert);
  const comment = h('input', {
    type: 'text', name: 'comment', required: true, maxlength: 2000, placeholder: 'Why, and until when it is safe',
    'aria-label': 'Comment', spellcheck: 'false', class: 'silence-comment',
  });
  const duration = h('select', { name: 'duration', 'aria-label': 'Duration', class: 'silence-duration' },
    DURATIONS.map(([value, label]) => h('option', { value }, label)));
  const status = h('div', { class: 'form-status', 'aria-live': 'polite' });
  const form = h('form', { class: 'silence-form', dataset: { role: 'silence-form' }, hidden: true },
    h('p', { class: 'silence-scope' }, 'Silences alerts matching ',
      matchers.map((m, i) => [i ? ' ' : '', h('code', { class: 'matcher' }, matcherText(m))])),
    h('div', { class: 'silence-row' },
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'For'), duration),
      h('label', { class: 'field field-grow' }, h('span', { class: 'field-label' }, 'Comment (required)'), comment),
      h('div', { class: 'silence-buttons' },
        h('button', { type: 'submit', class: 'button button-primary' }, 'Create silence'),
        h('button', { type: 'button', class: 'button button-quiet', dataset: { action: 'cancel' } }, 'Cancel'))),
    status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = comment.value.trim();
    if (!text) {
      replace(status, problem('A silence needs a comment: say why.'));
      comment.focus();
      return;
    }
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      await send('POST', `${API}/silences`, { matchers, duration: duration.value, comment: text });
      view.expanded.delete(alert.id);
      await load();
    } catch (error) {
      replace(status, problem(explain(error, 'create the silence')));
      submit.disabled = false;
    }
  });
  form.querySelector('[data-action="cancel"]').addEventListener('click', () => {
    form.hidden = true;
    replace(status);
    item.querySelector('[data-action="silence"]').focus();
  });
  return form;
}

/** What the history entry carries besides its event (who acknowledged, which silence ...), empty values left out. */
function historyDetail(detail) {
  const parts = Object.entries(detail || {})
    .filter(([, value]) => value !== null && value !== undefined && value !== '')
    .map(([name, value]) => `${name}: ${typeof value === 'object' ? JSON.stringify(value) : value}`);
  return parts.length ? h('span', { class: 'history-detail' }, parts.join(' · ')) : null;
}

function historyList(items) {
  if (!items.length) return h('p', { class: 'empty-note quiet' }, 'No history yet.');
  return h('ol', { class: 'alert-history', dataset: { role: 'history' } }, items.map((entry) =>
    h('li', { dataset: { event: entry.event } },
      h('span', { class: `pill alert-state state-${entry.event in STATE_ORDER ? entry.event : 'note'}` }, entry.event),
      ' ', timeWithRelative(entry.at),
      entry.value !== null && entry.value !== undefined ? h('span', { class: 'muted' }, ` · value ${entry.value}`) : null,
      historyDetail(entry.detail))));
}

function notificationTable(items, { resend = false } = {}) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'data-table notification-table' },
    h('thead', {}, h('tr', {}, [resend ? 'Alert' : null, 'Receiver', 'Kind', 'State', 'Attempts', 'Last answer',
      'Created', resend ? '' : null].filter((c) => c !== null).map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, items.map((n) => h('tr', { dataset: { notificationId: n.id, state: n.state } },
      resend ? h('td', {}, h('a', { href: `/alerts?alert=${encodeURIComponent(n.alert_id)}`, class: 'alert-ref' },
        view.names.get(n.alert_id) || n.alert_id)) : null,
      h('td', {}, h('code', {}, n.receiver)),
      h('td', {}, n.kind),
      h('td', {}, h('span', { class: `pill notif-${['pending', 'delivered', 'dead'].includes(n.state) ? n.state : 'other'}` },
        n.state)),
      h('td', { class: 'num' }, formatCount(n.attempts)),
      h('td', { class: 'last-answer' }, [n.last_status ? `HTTP ${n.last_status}` : null, n.last_error]
        .filter(Boolean).join(' · ') || '—'),
      h('td', { class: 'col-when' }, n.created_at ? h('time', { datetime: n.created_at, title: formatFull(n.created_at) },
        formatRelative(n.created_at)) : '—'),
      resend ? h('td', { class: 'row-actions' }, h('button', {
        type: 'button', class: 'button button-small', dataset: { action: 'resend' },
        onclick: (event) => resendOne(n, event.currentTarget),
      }, 'Re-send')) : null)))));
}

async function loadDetail(alert, body) {
  body.dataset.state = 'loading';
  replace(body, h('p', { class: 'empty-note quiet' }, 'Loading history…'));
  try {
    const detail = await getJSON(`${API}/alerts/${encodeURIComponent(alert.id)}`);
    replace(body,
      detail.description ? h('p', { class: 'alert-description' }, detail.description) : null,
      h('div', { class: 'detail-grid' },
        h('section', {}, h('h4', {}, 'History'), historyList(detail.history || [])),
        h('section', {}, h('h4', {}, 'Notifications'),
          (detail.notifications || []).length ? notificationTable(detail.notifications)
            : h('p', { class: 'empty-note quiet' }, 'No notification was sent for this alert.'))));
    body.dataset.state = 'ready';
  } catch (error) {
    replace(body, problem(explain(error, 'load the history')));
    body.dataset.state = 'error';
  }
}

function alertItem(alert) {
  const since = alert.state === 'firing' ? alert.starts_at : alert.active_since;
  const sinceLabel = alert.state === 'firing' ? 'Firing since' : alert.state === 'pending' ? 'Pending since'
    : 'Active from';
  const status = h('div', { class: 'form-status', 'aria-live': 'polite' });
  const detailBody = h('div', { class: 'alert-detail-body' });
  const details = h('details', { class: 'alert-detail', dataset: { role: 'detail' } },
    h('summary', {}, 'History and notifications'), detailBody);
  const item = h('li', {
    class: `alert-item alert-level-${LEVELS.includes(alert.level) ? alert.level : 'unknown'}`,
    id: `alert-${alert.id}`, dataset: { alertId: alert.id, state: alert.state, level: alert.level },
  });
  const ackButton = h('button', {
    type: 'button', class: 'button button-small', dataset: { action: 'ack' }, disabled: Boolean(alert.acknowledged),
  }, alert.acknowledged ? 'Acknowledged' : 'Acknowledge');
  const silenceButton = h('button', { type: 'button', class: 'button button-small', dataset: { action: 'silence' },
    'aria-expanded': 'false' }, 'Silence…');
  const form = silenceForm(alert, item);
  const active = alert.state === 'firing' || alert.state === 'pending';
  replace(item,
    h('div', { class: 'alert-head' },
      levelBadge(alert.level),
      h('h3', { class: 'alert-name', dataset: { field: 'name' } }, alert.name),
      statePill(alert.state),
      alert.silenced_by ? h('span', { class: 'pill state-silenced', dataset: { field: 'silenced' } }, 'silenced') : null,
      alert.acknowledged ? h('span', { class: 'pill state-acked' }, 'acknowledged') : null,
      active ? h('div', { class: 'alert-actions' }, ackButton, silenceButton) : null),
    alert.summary ? h('p', { class: 'alert-summary', dataset: { field: 'summary' } }, alert.summary) : null,
    labelChips(alert.labels),
    h('dl', { class: 'facts alert-facts' },
      fact('Owner', alert.owner || h('span', { class: 'muted' }, 'none'), 'owner'),
      fact('Runbook', runbook(alert.runbook_url), 'runbook'),
      fact(sinceLabel, timeWithRelative(since), 'since'),
      alert.state === 'resolved' ? fact('Resolved', timeWithRelative(alert.ends_at), 'ends') : null,
      fact('Last change', lastChange(alert.last_change), 'last-change'),
      fact('Acknowledged', acknowledgement(alert.acknowledged), 'acknowledged'),
      alert.value !== null && alert.value !== undefined
        ? fact('Value', `${alert.value}${alert.threshold !== null && alert.threshold !== undefined
          ? ` (threshold ${alert.threshold})` : ''}`, 'value') : null,
      alert.response_minutes ? fact('Respond within', `${alert.response_minutes} min`, 'response') : null),
    active ? form : null,
    status,
    details);
  ackButton.addEventListener('click', async () => {
    ackButton.disabled = true;
    replace(status);
    try {
      await send('POST', `${API}/alerts/${encodeURIComponent(alert.id)}/ack`, { comment: '' });
      await load();
    } catch (error) {
      replace(status, problem(explain(error, 'acknowledge this alert')));
      ackButton.disabled = false;
    }
  });
  silenceButton.addEventListener('click', () => {
    form.hidden = !form.hidden;
    silenceButton.setAttribute('aria-expanded', String(!form.hidden));
    if (!form.hidden) form.querySelector('.silence-comment').focus();
  });
  details.addEventListener('toggle', () => {
    if (details.open) {
      view.expanded.add(alert.id);
      loadDetail(alert, detailBody);
    } else {
      view.expanded.delete(alert.id);
    }
  });
  if (view.expanded.has(alert.id)) details.open = true;
  return item;
}

function sortAlerts(alerts) {
  return [...alerts].sort((a, b) => (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9)
    || LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level)
    || (parseTime(a.starts_at || a.active_since) ?? 0) - (parseTime(b.starts_at || b.active_since) ?? 0));
}

// ---- sections ---------------------------------------------------------------------------------------

function renderCounts(counts) {
  const root = $('#alert-counts');
  const total = (state) => LEVELS.reduce((n, lv) => n + ((counts[state] || {})[lv] || 0), 0);
  replace(root,
    LEVELS.map((lv) => {
      const firing = (counts.firing || {})[lv] || 0;
      const pending = (counts.pending || {})[lv] || 0;
      return h('div', { class: `count-tile count-${lv}${firing ? ' is-firing' : ''}`, dataset: { level: lv } },
        levelBadge(lv),
        h('div', { class: 'count-numbers' },
          h('span', { class: 'count-firing', dataset: { field: 'firing' } }, formatCount(firing)),
          h('span', { class: 'count-caption' }, 'firing')),
        h('div', { class: 'count-numbers count-secondary' },
          h('span', { dataset: { field: 'pending' } }, formatCount(pending)),
          h('span', { class: 'count-caption' }, 'pending')));
    }),
    h('p', { class: 'count-total muted' }, `${formatCount(total('firing'))} firing · ${formatCount(total('pending'))} `
      + 'pending in total'));
}

function renderList(root, alerts, empty) {
  if (!alerts.length) {
    replace(root, h('p', { class: 'empty-note ok-note', dataset: { state: 'empty' } }, empty));
    return;
  }
  replace(root, h('ul', { class: 'alert-list' }, sortAlerts(alerts).map(alertItem)));
}

async function expireOne(silence, button) {
  button.disabled = true;
  const row = button.closest('li');
  try {
    await send('DELETE', `${API}/silences/${encodeURIComponent(silence.id)}`);
    await load();
  } catch (error) {
    replace(row.querySelector('.form-status'), problem(explain(error, 'expire the silence')));
    button.disabled = false;
  }
}

function renderSilences(items) {
  const panel = $('#silences-panel');
  const live = items.filter((si) => si.status && (si.status.state === 'active' || si.status.state === 'pending'));
  panel.hidden = !live.length;
  replace($('#silences'), h('ul', { class: 'silence-list' }, live.map((si) => {
    const button = h('button', { type: 'button', class: 'button button-small', dataset: { action: 'expire' } }, 'Expire');
    button.addEventListener('click', () => expireOne(si, button));
    return h('li', { class: 'silence-item', dataset: { silenceId: si.id, state: si.status.state } },
      h('div', { class: 'silence-main' },
        h('div', { class: 'silence-matchers' }, si.matchers.map((m) => h('code', { class: 'matcher' }, matcherText(m)))),
        h('p', { class: 'silence-comment-text' }, si.comment),
        h('p', { class: 'silence-meta muted' }, h('span', { class: `pill silence-${si.status.state}` }, si.status.state),
          ` by ${si.created_by} · `, si.status.state === 'pending' ? 'starts ' : '',
          si.status.state === 'pending' ? timeWithRelative(si.starts_at, { future: true }) : null,
          si.status.state === 'pending' ? ' · ' : '', 'ends ', timeWithRelative(si.ends_at, { future: true })),
        h('div', { class: 'form-status', 'aria-live': 'polite' })),
      h('div', { class: 'row-actions' }, button));
  })));
}

async function resendOne(notification, button) {
  button.disabled = true;
  try {
    await send('POST', `${API}/notifications/${encodeURIComponent(notification.id)}/resend`);
    // Said once, by the next render: the row itself leaves the list.
    view.deadNote = `Re-sent: the notification to ${notification.receiver} is back in the outbox as pending.`;
    await load();
  } catch (error) {
    replace($('#dead-status'), problem(explain(error, 're-send the notification')));
    button.disabled = false;
  }
}

function renderDead(items) {
  const note = view.deadNote;
  view.deadNote = '';
  $('#dead-panel').hidden = !items.length && !note;
  replace($('#dead-status'), note ? h('p', { class: 'ok-note', role: 'status' }, note) : null);
  replace($('#dead'), items.length ? notificationTable(items, { resend: true })
    : h('p', { class: 'empty-note quiet' }, 'No dead letters left.'));
}

/** A linked alert (?alert=<id>) missing from the lists shown: fetched on its own so the link still lands. */
async function linkedAlert(id) {
  const panel = $('#linked-panel');
  try {
    const alert = await getJSON(`${API}/alerts/${encodeURIComponent(id)}`);
    view.names.set(alert.id, alert.name);
    replace($('#linked'), h('ul', { class: 'alert-list' }, alertItem(alert)));
  } catch (error) {
    replace($('#linked'), problem(error instanceof ApiError && error.status === 404
      ? `No alert with id “${id}”.` : explain(error, 'load the linked alert')));
  }
  panel.hidden = false;
}

function openTarget() {
  if (!view.target) return;
  const item = document.getElementById(`alert-${view.target}`);
  if (!item) return;
  const details = item.querySelector('details.alert-detail');
  if (!details.open) details.open = true;  // its toggle handler loads the history
  item.classList.add('is-target');
  item.scrollIntoView({ block: 'start' });
  view.target = '';  // once: a reload after an action keeps the reader where they are
}

async function load() {
  const root = $('#alerts-root');
  document.body.dataset.ready = 'false';
  root.setAttribute('aria-busy', 'true');
  const [active, resolved, silences, dead] = await Promise.allSettled([
    getJSON(`${API}/alerts`, { state: 'active' }),
    view.showResolved ? getJSON(`${API}/alerts`, { state: 'resolved', limit: 100 }) : Promise.resolve(null),
    getJSON(`${API}/silences`, { state: 'all' }),
    getJSON(`${API}/notifications`, { state: 'dead' }),
  ]);
  const failure = $('#alerts-problem');
  if (active.status === 'fulfilled') {
    const body = active.value;
    for (const a of body.alerts) view.names.set(a.id, a.name);
    renderCounts(body.counts || {});
    renderList($('#alert-list'), body.alerts, 'No alert is firing or pending.');
    $('#alert-list-sub').textContent = `${formatCount(body.alerts.length)} active · as of ${formatFull(body.generated_at)}`;
    replace(failure);
  } else {
    replace(failure, problem(explain(active.reason, 'load the alerts')));
    replace($('#alert-list'));
  }
  const resolvedPanel = $('#resolved-panel');
  resolvedPanel.hidden = !view.showResolved;
  if (view.showResolved) {
    if (resolved.status === 'fulfilled') {
      for (const a of resolved.value.alerts) view.names.set(a.id, a.name);
      renderList($('#resolved-list'), resolved.value.alerts, 'No resolved alerts.');
    } else {
      replace($('#resolved-list'), problem(explain(resolved.reason, 'load the resolved alerts')));
    }
  }
  if (silences.status === 'fulfilled') renderSilences(silences.value.items);
  else replace($('#silences'), problem(explain(silences.reason, 'load the silences')));
  if (dead.status === 'fulfilled') renderDead(dead.value.items);
  else {
    $('#dead-panel').hidden = false;
    replace($('#dead'), problem(explain(dead.reason, 'load the dead letters')));
  }
  if (view.target && !document.getElementById(`alert-${view.target}`)) await linkedAlert(view.target);
  openTarget();
  root.removeAttribute('aria-busy');
  root.dataset.state = active.status === 'fulfilled' ? 'ready' : 'error';
  document.body.dataset.ready = 'true';
}

export function initAlerts() {
  const params = new URLSearchParams(window.location.search);
  view.target = (params.get('alert') || '').slice(0, 64);
  view.showResolved = params.get('resolved') === '1';
  const toggle = $('#show-resolved');
  toggle.checked = view.showResolved;
  toggle.addEventListener('change', () => {
    view.showResolved = toggle.checked;
    const url = new URL(window.location.href);
    if (view.showResolved) url.searchParams.set('resolved', '1');
    else url.searchParams.delete('resolved');
    window.history.replaceState(null, '', url.pathname + url.search);
    load();
  });
  $('#alerts-refresh').addEventListener('click', () => load());
  // app.js stores a key entered in the form (or forgets it) before these run: show the page as that key sees it.
  $('#auth-form').addEventListener('submit', () => load());
  $('#key-forget').addEventListener('click', () => load());
  load();
  return { reload: load };
}

if (document.body.dataset.page === 'alerts') initAlerts();
