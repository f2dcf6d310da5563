// The group page (/groups/{id}): one failure group with its counts over time, member templates, samples, events
// and activity, the triage actions (resolve, ignore, assign, note, merge, split) and a rule drafted from it. The
// page only drafts and previews a rule: activating one stays the rules flow (docs/rules.md). Every value shown
// comes from /api/v1/groups/{id}* and lands as text, never markup.

import { renderChartMessage, renderTrend } from './charts.js';
import {
  $, $$, ApiError, CLASS_NAMES, WINDOW_MS, WINDOW_NAMES, eventHref, formatCount, formatFull, formatPercent, formatRelative,
  formatWhen, getJSON, h, replace, sendJSON,
} from './lib.js';
import {
  API, GROUP_WINDOWS, explain, groupHref, problem, quiet, sparkline, statusBadge, trendChangeView,
} from './groups.js';

const CLASSES = ['service_failure', 'client_failure', 'client_abort'];
const CATEGORIES = [
  'service_timeout', 'authorization', 'resource_exhausted', 'data_error', 'system_error', 'rate_limited',
  'network_error', 'dependency_error', 'client_abort', 'not_found', 'conflict', 'cancelled', 'unknown',
];
const DEFAULT_WINDOW = '7d';
// A failure kind as the rule packs spell them; anything else is left to the draft's own choice.
const KIND = /^[a-z][a-z0-9_]{0,63}$/;
const EVENT_PAGE = 20;
const SHOWN_ACTIVITY = 50;
const BUCKETS = { hour: [3600e3, 'hour'], day: [86400e3, 'day'] };
// The API's hourly series covers the window's last week at most.
const HOUR_SERIES_MS = 7 * 86400e3;
// The rules flow a drafted rule goes through: the API's own description of preview and activate (docs/rules.md).
const RULES_PREVIEW_DOCS = '/docs#/rules/preview_api_v1_rules_preview_post';
const RULES_ACTIVATE_DOCS = '/docs#/rules/activate_api_v1_rules_activate_post';

const view = {
  id: '', followed: '', window: DEFAULT_WINDOW, bucket: '', group: null, cursors: [null], next: null,
  draft: null, draftToken: 0, eventsToken: 0, groupToken: 0,
};

function groupPath(suffix = '') {
  return `${API}/${encodeURIComponent(view.id)}${suffix}`;
}

function setNote(...children) {
  replace($('#group-note'), ...children);
}

function say(text, { ok = true } = {}) {
  replace($('#action-status'), ok ? h('p', { class: 'ok-note action-ok', role: 'status' }, text) : problem(text));
}

// ---- header, facts, mix -------------------------------------------------------------------------------

function ignoreText(ignore) {
  if (!ignore) return null;
  if (ignore.until) return `until ${formatFull(ignore.until)}`;
  if (ignore.count !== null && ignore.count !== undefined) {
    const left = ignore.remaining !== null && ignore.remaining !== undefined ? ignore.remaining : ignore.count;
    return `for ${formatCount(Number(left))} more event${Number(left) === 1 ? '' : 's'} (of ${formatCount(Number(ignore.count))})`;
  }
  return 'forever';
}

function renderHead(group) {
  const title = String(group.title || group.sample_message || group.id);
  document.title = `${title.slice(0, 60)} · Group · faultlens`;
  $('#group-title').textContent = title;
  $('#group-title').title = title;
  $('#crumb-id').textContent = group.id;
  const ignored = group.status === 'ignored' ? ignoreText(group.ignore) : null;
  replace($('#group-status'),
    statusBadge(group.status),
    ignored ? h('span', { class: 'muted', dataset: { field: 'ignore' } }, `ignored ${ignored}`) : null,
    h('span', { class: 'status-item' }, h('span', { class: 'muted' }, 'Assignee '),
      group.assignee ? h('strong', { dataset: { field: 'assignee' } }, group.assignee)
        : h('span', { class: 'muted', dataset: { field: 'assignee' } }, 'nobody')),
    h('span', { class: 'status-item', dataset: { field: 'count' } },
      h('strong', {}, formatCount(Number(group.count))), h('span', { class: 'muted' }, ` events, ${WINDOW_NAMES[view.window]}`)),
    h('span', { class: 'status-item trend-cell' }, sparkline(group.trend), trendChangeView(group.trend_change, group.trend)),
    group.covered_by_rule ? h('span', { class: 'pill verdict-pass' }, 'covered by a rule')
      : h('span', { class: 'pill pill-quiet', dataset: { field: 'uncovered' } }, 'no rule decides it'));
  const resolved = group.status === 'resolved';
  const muted = resolved || group.status === 'ignored';
  $('[data-action="resolve"]').hidden = resolved;
  $('[data-action="unresolve"]').hidden = !muted;
  $('[data-action="unresolve"]').textContent = resolved ? 'Unresolve' : 'Stop ignoring';
  if (document.activeElement !== $('#assignee-input')) $('#assignee-input').value = group.assignee || '';
}

function fact(label, content, field) {
  return [h('dt', {}, label), h('dd', { dataset: field ? { field } : {} }, content)];
}

function absRel(value) {
  if (!value) return h('span', { class: 'muted' }, '—');
  return [h('time', { datetime: String(value), title: String(value) }, formatFull(value)),
    h('span', { class: 'muted' }, ` (${formatRelative(value)})`)];
}

function chips(values, css = 'env-chip') {
  const list = (Array.isArray(values) ? values : []).map(String).filter(Boolean);
  if (!list.length) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'chip-list' }, list.map((v) => h('code', { class: css, title: v }, v)));
}

function renderFacts(group) {
  replace($('#facts'), h('dl', { class: 'facts group-facts' },
    fact('First seen', absRel(group.first_seen), 'first-seen'),
    fact('Last seen', absRel(group.last_seen), 'last-seen'),
    fact('First release', group.first_release ? h('code', { class: 'env-chip' }, group.first_release)
      : h('span', { class: 'muted' }, '—'), 'first-release'),
    fact('Sources', chips(group.sources, 'source-chip'), 'sources'),
    fact('Releases', chips(group.releases), 'releases'),
    fact('Environments', chips(group.environments), 'environments'),
    fact('Actionable', formatPercent(Number(group.actionable_share)), 'actionable'),
    fact('Templates', formatCount(Number(group.members) || (group.member_templates || []).length || 1), 'members'),
    group.resolved_at ? fact('Resolved', absRel(group.resolved_at), 'resolved-at') : null,
    group.regressed_at ? fact('Regressed', absRel(group.regressed_at), 'regressed-at') : null,
    group.status === 'ignored' ? fact('Ignored', ignoreText(group.ignore) || 'forever', 'ignored') : null));
}

function renderMix(group) {
  const mix = Array.isArray(group.mix) ? [...group.mix].sort((a, b) => b.count - a.count) : [];
  const total = mix.reduce((n, m) => n + (Number(m.count) || 0), 0);
  if (!mix.length) {
    replace($('#mix'), quiet('No events in this window.'));
    return;
  }
  replace($('#mix'), h('ul', { class: 'mix-list', dataset: { field: 'mix' } }, mix.map((m) => {
    const cls = CLASSES.includes(m.failure_class) ? m.failure_class : 'none';
    const share = total > 0 ? m.count / total : 0;
    return h('li', { class: 'mix-item', dataset: { kind: m.failure_kind, cls: m.failure_class } },
      h('div', { class: 'mix-line' },
        h('span', { class: `badge badge-${cls}` }, CLASS_NAMES[m.failure_class] || String(m.failure_class)),
        h('code', { class: 'kind-chip', title: m.failure_kind }, String(m.failure_kind)),
        h('span', { class: 'mix-count' }, formatCount(Number(m.count)), h('span', { class: 'muted' }, ` · ${formatPercent(share)}`))),
      h('span', { class: 'mix-bar', 'aria-hidden': 'true' },
        h('span', { class: `mix-fill mix-${cls}`, dataset: { share: share.toFixed(4) } })));
  })));
  // Widths through CSSOM: the page's CSP refuses style attributes written as markup, not style properties.
  for (const fill of $$('.mix-fill', $('#mix'))) fill.style.width = `${Math.max(2, Number(fill.dataset.share) * 100)}%`;
}

// ---- chart ----------------------------------------------------------------------------------------

function bucketFor(group) {
  if (view.bucket) return view.bucket;
  const hours = (group.series && group.series.hour) || [];
  return view.window === '24h' && hours.length ? 'hour' : 'day';
}

function renderChart(group) {
  const root = $('#group-chart');
  const bucket = bucketFor(group);
  for (const button of $$('[data-bucket]')) button.setAttribute('aria-pressed', String(button.dataset.bucket === bucket));
  const rows = (group.series && Array.isArray(group.series[bucket])) ? group.series[bucket] : [];
  const [bucketMs, bucketLabel] = BUCKETS[bucket];
  const counts = new Map();
  for (const row of rows) {
    const t = Date.parse(row.bucket);
    if (Number.isFinite(t)) counts.set(t, (counts.get(t) || 0) + (Number(row.count) || 0));
  }
  // The chart spans the window (the hourly series its last week at most), quiet buckets at zero.
  const now = Date.now();
  const span = bucket === 'hour' ? Math.min(WINDOW_MS[view.window], HOUR_SERIES_MS) : WINDOW_MS[view.window];
  const first = Math.min(Math.floor((now - span) / bucketMs) * bucketMs, ...counts.keys());
  const buckets = [];
  for (let t = first; t <= now; t += bucketMs) buckets.push({ t, failures: counts.get(t) || 0, rate: null });
  for (const [t, n] of counts) if ((t - first) % bucketMs !== 0) buckets.push({ t, failures: n, rate: null });
  buckets.sort((x, y) => x.t - y.t);
  $('#chart-sub').textContent = `Events of this group per ${bucketLabel}, `
    + (span < WINDOW_MS[view.window] ? WINDOW_NAMES['7d'] : WINDOW_NAMES[view.window]);
  root.removeAttribute('aria-busy');
  if (!buckets.length || !buckets.some((b) => b.failures > 0)) {
    renderChartMessage(root, `No events of this group in the ${WINDOW_NAMES[view.window]}.`);
    root.dataset.state = 'empty';
    return;
  }
  renderTrend(root, {
    buckets, bucketMs, bucketLabel, windowLabel: WINDOW_NAMES[view.window], hasClasses: false, showRate: false,
  });
  root.dataset.state = 'ready';
}

// ---- members, samples, activity -------------------------------------------------------------------

function syncSplitButton() {
  const boxes = $$('#members input[type="checkbox"]');
  const picked = boxes.filter((box) => box.checked).length;
  const button = $('#split-button');
  // Splitting every template out would only rename the group.
  button.disabled = picked === 0 || picked === boxes.length;
  button.textContent = picked ? `Split ${picked} selected out` : 'Split selected out';
}

function renderMembers(group) {
  const members = Array.isArray(group.member_templates) ? group.member_templates : [];
  if (!members.length) {
    replace($('#members'), quiet('No member templates listed.'));
    syncSplitButton();
    return;
  }
  const many = members.length > 1;
  replace($('#members'), h('ul', { class: 'member-list' }, members.map((m) => {
    const box = many ? h('input', { type: 'checkbox', value: m.id, 'aria-label': `Select template ${m.id}`, onchange: syncSplitButton })
      : null;
    return h('li', { class: 'member-item', dataset: { memberId: m.id } },
      box ? h('label', { class: 'member-pick' }, box) : null,
      h('div', { class: 'member-main' },
        h('code', { class: 'member-template', title: m.template }, String(m.template)),
        h('div', { class: 'member-meta muted' }, h('code', {}, m.id), ' · ',
          `${formatCount(Number(m.count))} event${Number(m.count) === 1 ? '' : 's'}`,
          m.id === group.id ? ' · the group\u2019s own template' : '')));
  })), many ? null : h('p', { class: 'feed-more muted' }, 'One template: nothing to split out.'));
  syncSplitButton();
}

function renderSamples(group) {
  const samples = Array.isArray(group.samples) ? group.samples : [];
  replace($('#samples'), samples.length
    ? h('ul', { class: 'sample-list', dataset: { field: 'samples' } }, samples.map((text) =>
      h('li', {}, h('pre', { class: 'message sample-message' }, String(text)))))
    : quiet('No sample message is stored for this group.'));
}

function activityDetail(detail) {
  if (detail === null || detail === undefined || detail === '') return null;
  if (typeof detail === 'string') return detail;
  const shown = (k, v) => {
    if (Array.isArray(v)) return v.join(', ');
    if (typeof v === 'object') return JSON.stringify(v);
    // Times (an ignore's `until`, *_at) in the reader's zone, as everywhere else on the page.
    if ((k === 'until' || k.endsWith('_at')) && typeof v === 'string' && Number.isFinite(Date.parse(v))) return formatFull(v);
    return String(v);
  };
  const parts = Object.entries(detail)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k.replace(/_/g, ' ')}: ${shown(k, v)}`);
  return parts.length ? parts.join(' · ') : null;
}

function renderActivity(group) {
  const items = Array.isArray(group.activity) ? group.activity : [];
  if (!items.length) {
    replace($('#activity'), quiet('Nobody has acted on this group yet.'));
    return;
  }
  replace($('#activity'), h('ol', { class: 'activity-list', dataset: { role: 'activity' } },
    items.slice(0, SHOWN_ACTIVITY).map((entry) => {
      const detail = activityDetail(entry.detail);
      return h('li', { class: `activity-item activity-${String(entry.action).replace(/[^a-z_]/g, '')}`,
        dataset: { activity: entry.action } },
      h('div', { class: 'activity-head' },
        h('strong', { class: 'activity-actor', dataset: { field: 'actor' } }, String(entry.actor || 'unknown')),
        h('span', { class: 'pill activity-action' }, String(entry.action)),
        h('time', { class: 'activity-when muted', datetime: String(entry.at), title: formatFull(entry.at),
          dataset: { field: 'at' } }, formatRelative(entry.at))),
      detail ? h('p', { class: `activity-detail${entry.action === 'note' ? ' activity-note' : ''}`, dataset: { field: 'detail' } },
        detail) : null);
    })), items.length > SHOWN_ACTIVITY
    ? h('p', { class: 'feed-more muted' }, `Showing the newest ${SHOWN_ACTIVITY} of ${formatCount(items.length)}.`) : null);
}

function render(group) {
  view.group = group;
  renderHead(group);
  renderFacts(group);
  renderMix(group);
  renderChart(group);
  renderMembers(group);
  renderSamples(group);
  renderActivity(group);
  $('#crumb-groups').setAttribute('href', view.window === DEFAULT_WINDOW ? '/groups' : `/groups?window=${view.window}`);
}

// ---- events -----------------------------------------------------------------------------------------

function eventRow(item) {
  const href = eventHref(item.id);
  const message = item.error_message || item.error_code || '(no message)';
  const cls = CLASSES.includes(item.failure_class) ? item.failure_class : 'none';
  const row = h('tr', { dataset: { eventId: item.id } },
    h('td', { class: 'col-when' },
      h('time', { datetime: item.occurred_at, title: formatFull(item.occurred_at) }, formatWhen(item.occurred_at)),
      h('span', { class: 'muted when-rel' }, formatRelative(item.occurred_at))),
    h('td', { class: 'col-source' }, h('span', { class: 'source-name', title: item.source }, item.source),
      item.operation ? h('span', { class: 'muted op-name', title: item.operation }, item.operation) : null),
    h('td', { class: 'col-class' }, h('span', { class: `badge badge-${cls}` }, CLASS_NAMES[item.failure_class] || item.failure_class)),
    h('td', { class: 'col-kind' }, h('code', { class: 'kind-chip', title: item.failure_kind }, item.failure_kind)),
    h('td', { class: 'col-message' }, h('a', { href, class: 'row-link', title: message }, message)),
    h('td', { class: 'col-status' }, item.release ? h('code', { class: 'env-chip', title: item.release }, item.release)
      : h('span', { class: 'muted' }, '—')));
  row.addEventListener('click', (event) => {
    if (event.target.closest('a') || window.getSelection().toString()) return;
    window.location.assign(href);
  });
  return row;
}

async function loadEvents() {
  const mine = ++view.eventsToken;
  const table = $('#group-events');
  const body = $('#group-events-body');
  table.setAttribute('aria-busy', 'true');
  let page;
  try {
    page = await getJSON(groupPath('/events'), {
      window: view.window, limit: EVENT_PAGE, cursor: view.cursors[view.cursors.length - 1] || undefined,
    });
  } catch (error) {
    if (mine !== view.eventsToken) return;
    table.removeAttribute('aria-busy');
    table.dataset.state = 'error';
    replace(body, h('tr', { class: 'empty-row' }, h('td', { colspan: 6 }, explain(error, 'load the events'))));
    $('#events-next').disabled = true;
    return;
  }
  if (mine !== view.eventsToken) return;
  const items = Array.isArray(page.items) ? page.items : [];
  view.next = page.next_cursor || null;
  replace(body, items.length ? items.map(eventRow) : h('tr', { class: 'empty-row' }, h('td', { colspan: 6 },
    view.cursors.length > 1 ? 'No more events.' : `No events of this group in the ${WINDOW_NAMES[view.window]}.`)));
  $('#events-sub').textContent = `Newest first, ${WINDOW_NAMES[view.window]}; each opens its event page`;
  $('#events-prev').disabled = view.cursors.length <= 1;
  $('#events-next').disabled = !view.next;
  $('#events-page').textContent = `Page ${view.cursors.length}`;
  table.removeAttribute('aria-busy');
  table.dataset.state = items.length ? 'ready' : 'empty';
}

// ---- actions --------------------------------------------------------------------------------------

function actionButtons() {
  return $$('#actions-panel button, #split-button');
}

/** One change: buttons held while it runs, the group re-drawn from the answer, the outcome said in words. */
async function act(doing, method, suffix, body, done) {
  const buttons = actionButtons().filter((b) => !b.disabled);
  for (const b of buttons) b.disabled = true;
  replace($('#action-status'));
  try {
    const answer = await sendJSON(method, groupPath(suffix), body, { params: { window: view.window } });
    const group = answer && answer.group && answer.new_group ? answer.group : answer;
    if (group && group.id) render(group);
    closeForms();
    if (done) await done(answer);
    return answer;
  } catch (error) {
    say(explain(error, doing), { ok: false });
    return null;
  } finally {
    for (const b of buttons) b.disabled = false;
    syncSplitButton();
  }
}

function closeForms() {
  for (const form of $$('.action-form')) form.hidden = true;
  for (const button of $$('.group-actions [aria-expanded]')) button.setAttribute('aria-expanded', 'false');
}

function toggleForm(button, form, focus) {
  const open = form.hidden;
  closeForms();
  form.hidden = !open;
  button.setAttribute('aria-expanded', String(open));
  if (open && focus) focus.focus();
}

function localDateTimeValue(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function wireActions() {
  $('[data-action="resolve"]').addEventListener('click', () => act('resolve this group', 'POST', '/status',
    { status: 'resolved' }, () => say('Resolved: a new event of this group will mark it regressed.')));
  $('[data-action="unresolve"]').addEventListener('click', () => act('unresolve this group', 'POST', '/status',
    { status: 'unresolved' }, () => say('Back to open.')));

  const ignoreForm = $('#ignore-form');
  $('[data-action="ignore"]').addEventListener('click', (event) => {
    if (!$('#ignore-until').value) $('#ignore-until').value = localDateTimeValue(Date.now() + 24 * 3600e3);
    toggleForm(event.currentTarget, ignoreForm, $('#ignore-count'));
  });
  for (const input of [$('#ignore-count'), $('#ignore-until')]) {
    // Typing in a choice's own field picks that choice.
    input.addEventListener('focus', () => {
      const mode = input.id === 'ignore-count' ? 'count' : 'until';
      $(`input[name="ignore-mode"][value="${mode}"]`).checked = true;
    });
  }
  ignoreForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const mode = $('input[name="ignore-mode"]:checked').value;
    const body = { status: 'ignored' };
    let said = 'Ignored until someone stops ignoring it.';
    if (mode === 'count') {
      const n = Number.parseInt($('#ignore-count').value, 10);
      if (!(n >= 1)) {
        say('Say how many more events to ignore (1 or more).', { ok: false });
        return;
      }
      body.count = n;
      said = `Ignored for ${formatCount(n)} more event${n === 1 ? '' : 's'}.`;
    } else if (mode === 'until') {
      const t = Date.parse($('#ignore-until').value);
      if (!Number.isFinite(t) || t <= Date.now()) {
        say('Pick a time in the future to ignore until.', { ok: false });
        return;
      }
      body.until = new Date(t).toISOString();
      said = `Ignored until ${formatFull(body.until)}.`;
    }
    act('ignore this group', 'POST', '/status', body, () => say(said));
  });

  const assignForm = $('#assign-form');
  $('[data-action="assign"]').addEventListener('click', (event) => toggleForm(event.currentTarget, assignForm, $('#assignee-input')));
  assignForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const who = $('#assignee-input').value.trim();
    act(who ? 'assign this group' : 'unassign this group', 'PUT', '/assignee', { assignee: who || null },
      () => say(who ? `Assigned to ${who}.` : 'Unassigned.'));
  });
  $('[data-unassign]', assignForm).addEventListener('click', () => {
    $('#assignee-input').value = '';
    act('unassign this group', 'PUT', '/assignee', { assignee: null }, () => say('Unassigned.'));
  });

  const noteForm = $('#note-form');
  $('[data-action="note"]').addEventListener('click', (event) => toggleForm(event.currentTarget, noteForm, $('#note-input')));
  noteForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('#note-input').value.trim();
    if (!text) {
      say('A note needs some text.', { ok: false });
      return;
    }
    act('add the note', 'POST', '/notes', { text }, () => {
      $('#note-input').value = '';
      say('Note added.');
    });
  });

  const mergeForm = $('#merge-form');
  $('[data-action="merge"]').addEventListener('click', (event) => toggleForm(event.currentTarget, mergeForm, $('#merge-query')));
  mergeForm.addEventListener('submit', (event) => {
    event.preventDefault();
    findMergeCandidates($('#merge-query').value.trim());
  });

  for (const cancel of $$('[data-cancel]')) cancel.addEventListener('click', () => closeForms());

  $('#split-button').addEventListener('click', () => {
    const ids = $$('#members input[type="checkbox"]').filter((box) => box.checked).map((box) => box.value);
    if (!ids.length) return;
    act('split the templates out', 'POST', '/split', { member_ids: ids }, async (answer) => {
      const fresh = answer && answer.new_group;
      if (fresh && fresh.id) {
        replace($('#action-status'), h('p', { class: 'ok-note action-ok', role: 'status' },
          `Split ${ids.length} template${ids.length === 1 ? '' : 's'} out into a new group: `,
          h('a', { href: groupHref(fresh.id, view.window), dataset: { field: 'new-group' } }, String(fresh.title || fresh.id))));
      }
      await loadEvents();
    });
  });
}

// A group id as the API makes them (template ids); anything else is searched as words of a template.
const GROUP_ID = /^[A-Za-z0-9_-]{6,64}$/;

async function findMergeCandidates(query) {
  const root = $('#merge-results');
  if (!query) {
    replace(root, quiet('Type a group id or words of a template.'));
    return;
  }
  replace(root, quiet('Searching…'));
  const [byId, byText] = await Promise.allSettled([
    GROUP_ID.test(query) ? getJSON(`${API}/${encodeURIComponent(query)}`, { window: view.window }) : Promise.resolve(null),
    getJSON(API, { q: query, window: view.window, limit: 20 }),
  ]);
  const found = new Map();
  if (byId.status === 'fulfilled' && byId.value && byId.value.id) found.set(byId.value.id, byId.value);
  if (byText.status === 'fulfilled') for (const item of byText.value.items || []) found.set(item.id, item);
  found.delete(view.id);
  if (!found.size) {
    const failure = byText.status === 'rejected' ? byText.reason : null;
    replace(root, failure && !(failure instanceof ApiError && failure.status === 404)
      ? problem(explain(failure, 'search the groups')) : quiet(`No other group matches “${query}”.`));
    return;
  }
  const candidates = [...found.values()];
  const merge = h('button', { type: 'button', class: 'button button-primary button-small', disabled: true,
    dataset: { action: 'merge-selected' } }, 'Merge selected into this group');
  const boxes = [];
  const list = h('ul', { class: 'merge-list' }, candidates.map((item) => {
    const box = h('input', { type: 'checkbox', value: item.id, 'aria-label': `Merge group ${item.id}` });
    box.addEventListener('change', () => {
      const n = boxes.filter((b) => b.checked).length;
      merge.disabled = n === 0;
      merge.textContent = n ? `Merge ${n} selected into this group` : 'Merge selected into this group';
    });
    boxes.push(box);
    const title = String(item.title || item.id);
    return h('li', { class: 'merge-item', dataset: { groupId: item.id } },
      h('label', { class: 'merge-pick' }, box,
        h('span', { class: 'merge-main' },
          h('code', { class: 'member-template', title }, title),
          h('span', { class: 'member-meta muted' }, h('code', {}, item.id), ' · ',
            `${formatCount(Number(item.count))} events · `, statusBadge(item.status)))));
  }));
  merge.addEventListener('click', () => {
    const ids = boxes.filter((b) => b.checked).map((b) => b.value);
    if (!ids.length) return;
    act('merge the groups', 'POST', '/merge', { group_ids: ids }, async () => {
      replace(root);
      $('#merge-query').value = '';
      say(`Merged ${ids.length} group${ids.length === 1 ? '' : 's'} into this one.`);
      view.cursors = [null];
      await loadEvents();
    });
  });
  replace(root, list, h('div', { class: 'form-buttons' }, merge));
}

// ---- rule draft -------------------------------------------------------------------------------------

function draftChoices() {
  const pick = (name) => $(`#rule-body [name="${name}"]`);
  if (!pick('failure_class')) return {};
  const body = {};
  const cls = pick('failure_class').value;
  const category = pick('category').value;
  const kind = pick('kind').value.trim();
  const actionable = pick('is_actionable').value;
  const retryable = pick('retryable').value;
  if (cls) body.failure_class = cls;
  if (category) body.category = category;
  if (kind && KIND.test(kind)) body.kind = kind;
  if (actionable) body.is_actionable = actionable === 'yes';
  if (retryable) body.retryable = retryable === 'yes';
  return body;
}

function select(name, label, options, value) {
  const node = h('select', { name, 'aria-label': label },
    options.map(([v, text]) => h('option', { value: v }, text)));
  node.value = value;
  if (node.value !== value) {
    node.appendChild(h('option', { value }, value));
    node.value = value;
  }
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), node);
}

function yesNo(value) {
  return value === true ? 'yes' : value === false ? 'no' : '';
}

function moveSide(side) {
  if (!side) return h('span', { class: 'muted' }, '—');
  const cls = CLASSES.includes(side.failure_class) ? side.failure_class : 'none';
  return h('span', { class: 'move-side' },
    h('span', { class: `badge badge-${cls}` }, CLASS_NAMES[side.failure_class] || String(side.failure_class)),
    ' ', h('code', { class: 'kind-chip', title: side.failure_kind }, String(side.failure_kind)));
}

function renderPreview(preview) {
  if (!preview) return quiet('No preview was returned.');
  const moves = Array.isArray(preview.moves) ? preview.moves : [];
  const examined = Number(preview.total_examined);
  const changed = Number(preview.total_changed);
  const summary = h('p', { class: 'preview-summary', dataset: { field: 'preview-summary' } },
    h('strong', { dataset: { field: 'changed' } }, formatCount(changed)),
    ` event${changed === 1 ? '' : 's'} would change`,
    Number.isFinite(examined) ? [' of ', h('span', { dataset: { field: 'examined' } }, formatCount(examined)), ' examined'] : null,
    preview.window ? ` in the ${WINDOW_NAMES[preview.window] || preview.window}` : '', '.');
  if (!moves.length) return [summary];
  return [summary, h('div', { class: 'table-wrap' }, h('table', { class: 'data-table move-table' },
    h('thead', {}, h('tr', {}, ['From', '', 'To', 'Events', 'Samples'].map((c, i) =>
      h('th', { scope: 'col', class: i === 3 ? 'num' : null }, c)))),
    h('tbody', {}, moves.map((move) => h('tr', { dataset: { count: String(move.count) } },
      h('td', { dataset: { field: 'from' } }, moveSide(move.from)),
      h('td', { class: 'move-arrow', 'aria-label': 'to' }, '→'),
      h('td', { dataset: { field: 'to' } }, moveSide(move.to)),
      h('td', { class: 'num', dataset: { field: 'move-count' } }, formatCount(Number(move.count))),
      h('td', { class: 'move-samples' }, (move.sample_ids || []).slice(0, 3).map((id, i) =>
        [i ? ' ' : '', h('a', { href: eventHref(id), class: 'sample-link', title: id }, `#${i + 1}`)])))))))];
}

function renderDraft(answer) {
  const rule = (answer && answer.rule) || {};
  const current = draftChoices();
  const cls = current.failure_class || rule.failure_class || '';
  const category = current.category || rule.category || '';
  const kind = current.kind !== undefined ? current.kind : (rule.failure_kind || rule.kind || '');
  const actionable = current.is_actionable !== undefined ? yesNo(current.is_actionable) : yesNo(rule.is_actionable);
  const retryable = current.retryable !== undefined ? yesNo(current.retryable) : yesNo(rule.retryable);
  const kindInput = h('input', { type: 'text', name: 'kind', value: kind, maxlength: 64, spellcheck: 'false',
    pattern: '[a-z][a-z0-9_]{0,63}', title: 'lower case letters, digits and _, starting with a letter',
    'aria-label': 'Failure kind', class: 'kind-input' });
  const controls = h('form', { class: 'rule-controls', autocomplete: 'off' },
    select('failure_class', 'Class', [['', 'as its events'], ...CLASSES.map((c) => [c, CLASS_NAMES[c]]),
      ['none', 'Not a failure']], cls),
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Kind'), kindInput),
    select('category', 'Category', [['', 'default'], ...CATEGORIES.map((c) => [c, c.replace(/_/g, ' ')])], category),
    select('is_actionable', 'Actionable', [['', 'default'], ['yes', 'yes'], ['no', 'no']], actionable),
    select('retryable', 'Retryable', [['', 'default'], ['yes', 'yes'], ['no', 'no']], retryable));
  controls.addEventListener('change', () => requestDraft());
  controls.addEventListener('submit', (event) => {
    event.preventDefault();
    requestDraft();
  });
  const yaml = String(answer && answer.yaml ? answer.yaml : '');
  const copy = h('button', { type: 'button', class: 'button button-small', dataset: { action: 'copy-yaml' } }, 'Copy YAML');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(yaml);
      copy.textContent = 'Copied';
    } catch {
      // No clipboard (plain http): select the text so the keyboard can copy it.
      const range = document.createRange();
      range.selectNodeContents($('#rule-body pre.rule-yaml'));
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      copy.textContent = 'Selected: press Ctrl+C';
    }
  });
  replace($('#rule-body'),
    controls,
    h('div', { class: 'rule-columns' },
      h('section', { class: 'rule-yaml-box' },
        h('div', { class: 'rule-box-head' }, h('h3', {}, 'Rule (pack YAML)'), copy),
        h('pre', { class: 'template rule-yaml', dataset: { field: 'yaml' } }, yaml || '(empty draft)')),
      h('section', { class: 'rule-preview', dataset: { field: 'preview' } },
        h('div', { class: 'rule-box-head' }, h('h3', {}, 'What it would change')),
        renderPreview(answer && answer.preview))),
    h('p', { class: 'rule-next muted' },
      'Nothing changes until the rule is activated. Add it under ', h('code', {}, 'rules:'),
      ' in your tenant\u2019s pack, preview the pack (',
      h('a', { href: RULES_PREVIEW_DOCS, dataset: { field: 'preview-link' } }, h('code', {}, 'POST /api/v1/rules/preview')),
      '), then activate it (',
      h('a', { href: RULES_ACTIVATE_DOCS, dataset: { field: 'activate-link' } }, h('code', {}, 'POST /api/v1/rules/activate')),
      ', an admin key); the backfill reclassifies history. The whole flow: \u201cChanging rules safely\u201d, docs/rules.md.'),
    h('div', { id: 'rule-status', class: 'form-status', 'aria-live': 'polite' }));
}

async function requestDraft() {
  const kindInput = $('#rule-body [name="kind"]');
  if (kindInput && kindInput.value.trim() && !KIND.test(kindInput.value.trim())) {
    replace($('#rule-status'), problem('A kind is lower case letters, digits and _, starting with a letter '
      + '(e.g. checkout_key_missing).'));
    kindInput.focus();
    return;
  }
  const mine = ++view.draftToken;
  const panel = $('#rule-panel');
  const body = draftChoices();
  panel.dataset.state = 'loading';
  panel.setAttribute('aria-busy', 'true');
  if (!$('#rule-body').firstChild) replace($('#rule-body'), quiet('Drafting…'));
  let answer;
  try {
    answer = await sendJSON('POST', groupPath('/rule-draft'), body, { params: { window: view.window } });
  } catch (error) {
    if (mine !== view.draftToken) return;
    panel.removeAttribute('aria-busy');
    panel.dataset.state = 'error';
    const status = $('#rule-status');
    if (status) replace(status, problem(explain(error, 'draft the rule')));
    else replace($('#rule-body'), problem(explain(error, 'draft the rule')));
    return;
  }
  if (mine !== view.draftToken) return;
  view.draft = answer;
  renderDraft(answer);
  panel.removeAttribute('aria-busy');
  panel.dataset.state = 'ready';
  $('#rule-draft').textContent = 'Draft again';
}

// ---- loading ----------------------------------------------------------------------------------------

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const win = params.get('window');
  return GROUP_WINDOWS.includes(win) ? win : DEFAULT_WINDOW;
}

function writeUrl(push) {
  const url = groupHref(view.id, view.window);
  if (url === window.location.pathname + window.location.search) return;
  if (push) window.history.pushState(null, '', url);
  else window.history.replaceState(null, '', url);
}

function showMissing(text) {
  replace($('#group-problem'), problem(text));
  $('#group-title').textContent = 'Group not available';
  for (const node of [$('#actions-panel'), $('.group-grid'), $('#group-status'), $('.group-window')]) node.hidden = true;
}

async function load() {
  const root = $('#group-root');
  const mine = ++view.groupToken;
  document.body.dataset.ready = 'false';
  root.setAttribute('aria-busy', 'true');
  for (const button of $$('[data-window]')) button.setAttribute('aria-pressed', String(button.dataset.window === view.window));
  let group;
  try {
    group = await getJSON(groupPath(), { window: view.window });
  } catch (error) {
    if (mine !== view.groupToken) return;
    const nowIn = error instanceof ApiError && error.status === 404 ? String(error.details.now_in || '') : '';
    if (nowIn && nowIn !== view.id && !view.followed) {
      // A template merged into another group: its id answers where it went; follow it once.
      view.followed = view.id;
      view.id = nowIn;
      return load();
    }
    showMissing(error instanceof ApiError && error.status === 404 ? `No group with id “${view.id}”.`
      : explain(error, 'load the group'));
    root.removeAttribute('aria-busy');
    root.dataset.state = 'error';
    document.body.dataset.ready = 'true';
    return;
  }
  if (mine !== view.groupToken) return;
  replace($('#group-problem'));
  for (const node of [$('#actions-panel'), $('.group-grid'), $('#group-status'), $('.group-window')]) node.hidden = false;
  const asked = view.followed || view.id;
  view.followed = '';
  if (group.id && group.id !== asked) {
    // A member template's id (or a group merged away) leads to the group it belongs to now: say so, then show
    // the group under its own address so links copied from here stay right.
    setNote(h('p', { class: 'group-redirect muted', dataset: { field: 'redirect' } },
      h('code', {}, asked), ' is a template of this group; showing the group.'));
    view.id = group.id;
    writeUrl(false);
  }
  render(group);
  await loadEvents();
  root.removeAttribute('aria-busy');
  root.dataset.state = 'ready';
  document.body.dataset.ready = 'true';
}

export function initGroup() {
  const root = $('#group-root');
  view.id = root.dataset.groupId;
  view.window = readUrl();
  for (const button of $$('[data-window]')) {
    button.addEventListener('click', () => {
      if (button.dataset.window === view.window) return;
      view.window = button.dataset.window;
      view.bucket = '';
      view.cursors = [null];
      writeUrl(true);
      load();
    });
  }
  for (const button of $$('[data-bucket]')) {
    button.addEventListener('click', () => {
      view.bucket = button.dataset.bucket;
      if (view.group) renderChart(view.group);
    });
  }
  $('#events-next').addEventListener('click', () => {
    if (!view.next) return;
    view.cursors.push(view.next);
    loadEvents();
  });
  $('#events-prev').addEventListener('click', () => {
    if (view.cursors.length <= 1) return;
    view.cursors.pop();
    loadEvents();
  });
  $('#rule-draft').addEventListener('click', () => requestDraft());
  wireActions();
  window.addEventListener('popstate', () => {
    view.window = readUrl();
    view.cursors = [null];
    load();
  });
  // app.js stores a key entered in the form (or forgets it) before these run: show the page as that key sees it.
  $('#auth-form').addEventListener('submit', () => load());
  $('#key-forget').addEventListener('click', () => load());
  load();
  return { reload: load };
}

if (document.body.dataset.page === 'group') initGroup();
