// The releases page (/releases): the releases seen in a window with their actionable failure rate, and for the one
// selected its gate timeline: canary verdicts over time, rollbacks, readiness reports, replays and rollouts.
// Everything comes from /api/v1/releases and /api/v1/releases/timeline and lands as text, never markup.

import {
  $, $$, ApiError, WINDOW_NAMES, formatCount, formatDuration, formatFull, formatPercent,
  formatRelative, formatTick, formatWhen, getJSON, getText, h, parseTime, replace, s,
} from './lib.js';

const API = '/api/v1/releases';
const WINDOWS = ['24h', '7d', '30d', '90d'];
const DEFAULTS = { window: '7d', environment: '', release: '', releaseEnvironment: '', report: '' };
// A rollback id as the API makes them (uuid); anything else in ?rollback_report= is ignored.
const ROLLBACK_ID = /^[A-Za-z0-9-]{1,64}$/;
const VERDICTS = ['pass', 'fail', 'inconclusive'];
const RECOVERY = ['pending', 'recovered', 'overdue'];
// Rows of each timeline table shown at once; the chart shows every analysis the API answered (at most 100).
const SHOWN = 20;

let state = { ...DEFAULTS };
const tokens = { list: 0, timeline: 0, report: 0 };

// ---- URL state ------------------------------------------------------------------------------------

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const win = params.get('window');
  return {
    window: WINDOWS.includes(win) ? win : DEFAULTS.window,
    environment: (params.get('environment') || '').slice(0, 64),
    release: (params.get('release') || '').slice(0, 128),
    releaseEnvironment: (params.get('release_environment') || '').slice(0, 64),
    report: ROLLBACK_ID.test(params.get('rollback_report') || '') ? params.get('rollback_report') : '',
  };
}

function urlFor(next) {
  const params = new URLSearchParams();
  if (next.window !== DEFAULTS.window) params.set('window', next.window);
  if (next.environment) params.set('environment', next.environment);
  if (next.release) params.set('release', next.release);
  if (next.release && next.releaseEnvironment) params.set('release_environment', next.releaseEnvironment);
  if (next.report) params.set('rollback_report', next.report);
  const query = params.toString();
  return window.location.pathname + (query ? `?${query}` : '');
}

function writeUrl(push) {
  const url = urlFor(state);
  if (url === window.location.pathname + window.location.search) return;
  if (push) window.history.pushState(null, '', url);
  else window.history.replaceState(null, '', url);
}

// ---- small views ------------------------------------------------------------------------------------

function explain(error, doing) {
  if (!(error instanceof ApiError)) return `Could not ${doing}: ${error && error.message ? error.message : error}`;
  if (error.status === 401) return `Could not ${doing}: an API key is needed.`;
  if (error.status === 403) return `Not allowed to ${doing}: ${error.message}.`;
  if (error.status === 0) return `Could not ${doing}: ${error.message}`;
  return `Could not ${doing}: ${error.message} (HTTP ${error.status}).`;
}

function problem(text) {
  return h('p', { class: 'alert-problem', role: 'alert', dataset: { role: 'problem' } }, text);
}

function quiet(text) {
  return h('p', { class: 'empty-note quiet' }, text);
}

function when(value) {
  if (!value) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: value, title: formatFull(value) }, formatWhen(value),
    h('span', { class: 'muted when-rel' }, ` · ${formatRelative(value)}`));
}

function scoreText(score) {
  return Number.isFinite(score) ? `${Math.round(score * 100)}%` : '—';
}

function verdictPill(verdict) {
  const known = VERDICTS.includes(verdict) ? verdict : 'unknown';
  return h('span', { class: `pill verdict-${known}`, dataset: { field: 'verdict' } }, String(verdict || 'none'));
}

function recoveryPill(value) {
  const known = RECOVERY.includes(value) ? value : 'unknown';
  return h('span', { class: `pill recovery-${known}`, dataset: { field: 'recovery' } }, String(value || 'unknown'));
}

function passFail(passed, yes, no) {
  return h('span', { class: `pill verdict-${passed ? 'pass' : 'fail'}` }, passed ? yes : no);
}

function envLabel(env) {
  return env ? h('code', { class: 'env-chip' }, env) : h('span', { class: 'muted' }, 'none');
}

/** Each cell gets its column's name as data-label: a phone shows rows as stacked cards, each value named. */
function labelCells(rows, names) {
  for (const row of rows) Array.from(row.children).forEach((cell, i) => { if (names[i]) cell.dataset.label = names[i]; });
  return rows;
}

function table(className, headers, rows) {
  return h('div', { class: 'table-wrap' }, h('table', { class: `data-table stack-table ${className}` },
    h('thead', {}, h('tr', {}, headers.map(([text, cls]) => h('th', { scope: 'col', class: cls || null }, text)))),
    h('tbody', {}, labelCells(rows, headers.map(([text]) => text)))));
}

function more(items) {
  return items.length > SHOWN ? h('p', { class: 'feed-more muted' }, `Showing the newest ${SHOWN} of ${items.length}.`)
    : null;
}

// ---- a rollback drill's report ---------------------------------------------------------------------------

function reportHref(rollbackId) {
  return urlFor({ ...state, report: rollbackId });
}

/** A link to a drill report that opens it on this page (a new tab gets the same view from the URL). */
function reportLink(rollbackId, text, field) {
  return h('a', {
    href: reportHref(rollbackId), class: 'drill-report-link', dataset: { field, rollbackId },
    onclick: (event) => {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      state = { ...state, report: rollbackId };
      writeUrl(true);
      loadReport();
    },
  }, text);
}

function reportPanel() {
  let panel = $('#drill-report');
  if (!panel) {
    panel = h('section', { id: 'drill-report', class: 'panel drill-report', 'aria-labelledby': 'drill-report-title' });
    $('#releases-problem').after(panel);
  }
  return panel;
}

async function loadReport() {
  const token = ++tokens.report;
  const existing = $('#drill-report');
  if (!state.report) {
    if (existing) existing.remove();
    return;
  }
  const panel = reportPanel();
  const id = state.report;
  const close = h('a', {
    href: urlFor({ ...state, report: '' }), class: 'panel-link', dataset: { field: 'close-report' },
    onclick: (event) => {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      state = { ...state, report: '' };
      writeUrl(true);
      loadReport();
    },
  }, 'Close');
  const head = h('header', { class: 'panel-head' },
    h('div', {}, h('h2', { id: 'drill-report-title' }, 'Rollback drill report'),
      h('p', { class: 'panel-sub' }, 'Rollback ', h('code', {}, id))), close);
  panel.dataset.state = 'loading';
  panel.dataset.rollbackId = id;
  replace(panel, head, quiet('Loading…'));
  let text;
  try {
    text = await getText(`${API}/rollbacks/${encodeURIComponent(id)}/report`);
  } catch (error) {
    if (token !== tokens.report) return;
    panel.dataset.state = 'error';
    replace(panel, head, problem(error instanceof ApiError && error.status === 404
      ? 'No drill report is stored for this rollback.' : explain(error, 'load the drill report')));
    return;
  }
  if (token !== tokens.report) return;
  // The report is shown as text, never as markup: it quotes log lines and answers from servers.
  replace(panel, head, h('pre', { class: 'message drill-report-text', dataset: { field: 'report' } }, text));
  panel.dataset.state = 'ready';
  panel.scrollIntoView({ block: 'start' });
}

// ---- the release list ---------------------------------------------------------------------------------

function selectRelease(release, releaseEnvironment) {
  state = { ...state, release, releaseEnvironment: releaseEnvironment || '' };
  writeUrl(true);
  markSelected();
  return loadTimeline();
}

function markSelected() {
  for (const row of $$('#releases-body tr[data-release]')) {
    const on = row.dataset.release === state.release && row.dataset.environment === state.releaseEnvironment;
    row.classList.toggle('is-selected', on);
    if (on) row.setAttribute('aria-current', 'true');
    else row.removeAttribute('aria-current');
  }
}

function releaseRow(item) {
  const env = String(item.environment || '');
  const href = urlFor({ ...state, release: item.release, releaseEnvironment: env });
  const rate = Number(item.actionable_failure_rate);
  const sources = Array.isArray(item.sources) ? item.sources : [];
  const row = h('tr', { dataset: { release: item.release, environment: env } },
    h('td', { class: 'col-release' }, h('a', {
      href, class: 'release-link', title: item.release,
      onclick: (event) => {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        selectRelease(item.release, env);
      },
    }, item.release)),
    h('td', {}, envLabel(env)),
    h('td', { class: 'col-sources' }, sources.length
      ? h('span', { title: sources.join(', ') }, sources.slice(0, 2).join(', '),
        sources.length > 2 ? h('span', { class: 'muted' }, ` +${sources.length - 2}`) : null)
      : h('span', { class: 'muted' }, '—')),
    h('td', { class: 'col-when' }, when(item.first_seen)),
    h('td', { class: 'col-when' }, when(item.last_seen)),
    h('td', { class: 'num' }, formatCount(Number(item.total))),
    h('td', { class: 'num' }, formatCount(Number(item.actionable))),
    h('td', { class: 'num', dataset: { field: 'rate' } },
      h('span', { class: rate > 0 ? 'rate-bad' : 'rate-ok' }, formatPercent(rate))));
  // The whole row selects the release; the link inside stays the keyboard and screen-reader path.
  row.addEventListener('click', (event) => {
    if (event.target.closest('a') || window.getSelection().toString()) return;
    selectRelease(item.release, env);
  });
  return row;
}

function syncEnvironmentChoices(items) {
  const select = $('#env-filter');
  const names = [...new Set(items.map((item) => String(item.environment || '')).filter(Boolean))].sort();
  if (state.environment && !names.includes(state.environment)) names.unshift(state.environment);
  replace(select, h('option', { value: '' }, 'All environments'), names.map((name) => h('option', { value: name }, name)));
  select.value = state.environment;
}

async function loadList() {
  const token = ++tokens.list;
  const tableNode = $('#releases-table');
  const body = $('#releases-body');
  tableNode.setAttribute('aria-busy', 'true');
  let answer;
  try {
    answer = await getJSON(API, { window: state.window, environment: state.environment || undefined });
  } catch (error) {
    if (token !== tokens.list) return;
    tableNode.removeAttribute('aria-busy');
    tableNode.dataset.state = 'error';
    const text = error instanceof ApiError && error.status === 404
      ? 'The release list is not available on this server: open a release by name.'
      : explain(error, 'load the releases');
    $('#list-sub').textContent = 'Not available';
    replace(body, h('tr', { class: 'empty-row' }, h('td', { colspan: 8 }, text)));
    return;
  }
  if (token !== tokens.list) return;
  const items = Array.isArray(answer.releases) ? answer.releases : [];
  syncEnvironmentChoices(items);
  $('#list-sub').textContent = `${formatCount(items.length)} release${items.length === 1 ? '' : 's'} · ` +
    `${WINDOW_NAMES[state.window]}${state.environment ? ` · ${state.environment}` : ''} · newest first`;
  const names = $$('#releases-table thead th').map((th) => th.textContent.trim());
  replace(body, items.length ? labelCells(items.map(releaseRow), names)
    : h('tr', { class: 'empty-row' }, h('td', { colspan: 8 }, `No release was seen in the ${WINDOW_NAMES[state.window]}.`)));
  tableNode.removeAttribute('aria-busy');
  tableNode.dataset.state = 'ready';
  markSelected();
}

// ---- the canary chart -------------------------------------------------------------------------------

/** Score per analysis over time, a point per analysis coloured by verdict; rollback decisions as dashed lines. */
export function renderCanaryChart(root, analyses, rollbacks) {
  root._canary = { analyses, rollbacks };
  const points = analyses.map((a) => ({ ...a, t: parseTime(a.created_at) })).filter((a) => a.t !== null)
    .sort((a, b) => a.t - b.t);
  if (!points.length) {
    replace(root, quiet('No canary analysis of this release yet.'));
    return;
  }
  const width = Math.max(280, Math.floor(root.clientWidth || 640));
  const height = 170;
  const m = { l: 44, r: 18, t: 16, b: 28 };
  const pw = width - m.l - m.r;
  const ph = height - m.t - m.b;
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const span = t1 - t0;
  // One analysis (or several in one instant) sits in the middle; otherwise time runs left to right.
  const x = (t) => (span > 0 ? m.l + ((t - t0) / span) * pw : m.l + pw / 2);
  const y = (score) => m.t + ph - Math.min(1, Math.max(0, Number(score) || 0)) * ph;
  const counts = { pass: 0, fail: 0, inconclusive: 0 };
  for (const p of points) if (p.verdict in counts) counts[p.verdict] += 1;
  const label = `Canary verdicts of ${points.length} analys${points.length === 1 ? 'is' : 'es'}: ${counts.pass} pass, ` +
    `${counts.fail} fail, ${counts.inconclusive} inconclusive; newest ${points[points.length - 1].verdict} ` +
    `with score ${scoreText(points[points.length - 1].score)}.`;
  const svg = s('svg', {
    class: 'canary', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label,
    dataset: { count: String(points.length) },
  }, s('title', { text: label }));
  const grid = s('g', { class: 'grid' });
  for (const v of [0, 0.5, 1]) {
    grid.appendChild(s('line', { x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v) }));
    grid.appendChild(s('text', { class: 'tick', x: m.l - 8, y: y(v) + 4, 'text-anchor': 'end' }, `${v * 100}%`));
  }
  const tickSpan = Math.max(span, 3600e3);
  grid.appendChild(s('text', { class: 'tick', x: x(t0), y: height - 8, 'text-anchor': span > 0 ? 'start' : 'middle' },
    formatTick(t0, tickSpan)));
  if (span > 0) {
    grid.appendChild(s('text', { class: 'tick', x: x(t1), y: height - 8, 'text-anchor': 'end' }, formatTick(t1, tickSpan)));
  }
  svg.appendChild(grid);
  for (const rb of rollbacks) {
    const t = parseTime(rb.decided_at);
    if (t === null || t < t0 || t > t1 || span === 0) continue;
    svg.appendChild(s('line', { class: 'rollback-mark', x1: x(t), x2: x(t), y1: m.t, y2: m.t + ph },
      s('title', { text: `${rb.drill ? 'Rollback drill' : 'Rollback'} decided ${formatFull(rb.decided_at)}` })));
  }
  if (points.length > 1) {
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.score).toFixed(1)}`).join('');
    svg.appendChild(s('path', { class: 'canary-line', d, fill: 'none' }));
  }
  for (const p of points) {
    const verdict = VERDICTS.includes(p.verdict) ? p.verdict : 'unknown';
    svg.appendChild(s('circle', {
      class: `canary-point point-${verdict}`, cx: x(p.t).toFixed(1), cy: y(p.score).toFixed(1), r: 5,
      dataset: { verdict, analysisId: p.id },
    }, s('title', { text: `${formatFull(p.created_at)}: ${p.verdict}, score ${scoreText(p.score)}, against ` +
      `${p.baseline} in ${p.environment}` })));
  }
  const legend = h('ul', { class: 'canary-legend', 'aria-hidden': 'true' },
    VERDICTS.map((v) => h('li', {}, h('span', { class: `swatch point-${v}` }), `${v[0].toUpperCase()}${v.slice(1)} (${counts[v]})`)),
    rollbacks.length ? h('li', {}, h('span', { class: 'swatch swatch-rollback' }), 'Rollback decided') : null);
  replace(root, svg, legend);
  if (!root._observer && 'ResizeObserver' in window) {
    let lastWidth = width;
    root._observer = new ResizeObserver(() => {
      const now = Math.floor(root.clientWidth);
      if (root._canary && Math.abs(now - lastWidth) > 8) {
        lastWidth = now;
        renderCanaryChart(root, root._canary.analyses, root._canary.rollbacks);
      }
    });
    root._observer.observe(root);
  }
}

function metricChips(metrics) {
  if (!metrics.length) return h('span', { class: 'muted' }, '—');
  return h('ul', { class: 'metric-chips' }, metrics.map((metric) => {
    const verdict = VERDICTS.includes(metric.verdict) ? metric.verdict : 'unknown';
    return h('li', { class: `metric-chip metric-${verdict}`, title: metric.reason || metric.verdict,
      dataset: { metric: metric.name, verdict } }, String(metric.name).replace(/_/g, ' '));
  }));
}

function renderAnalyses(analyses) {
  const root = $('#canary-list');
  if (!analyses.length) {
    replace(root);
    return;
  }
  const rows = analyses.slice(0, SHOWN).map((a) => {
    const failing = (a.metrics || []).filter((m) => m.verdict === 'fail').map((m) => m.reason).filter(Boolean);
    return h('tr', { dataset: { analysisId: a.id, verdict: a.verdict } },
      h('td', { class: 'col-when' }, when(a.created_at)),
      h('td', {}, h('code', {}, a.baseline)),
      h('td', {}, envLabel(a.environment)),
      h('td', {}, verdictPill(a.verdict)),
      h('td', { class: 'num' }, scoreText(a.score)),
      h('td', { class: 'col-metrics' }, metricChips(a.metrics || []),
        failing.length ? h('p', { class: 'metric-reason' }, failing[0]) : null),
      h('td', { class: 'muted' }, a.rollout_id ? 'rollout' : 'ad hoc'));
  });
  replace(root, table('analysis-table', [['When'], ['Baseline'], ['Environment'], ['Verdict'], ['Score', 'num'],
    ['Metrics'], ['Run by']], rows), more(analyses));
}

// ---- rollbacks, readiness, replays, rollouts ----------------------------------------------------------

function renderRollbacks(rollbacks) {
  const root = $('#rollbacks');
  if (!rollbacks.length) {
    replace(root, quiet('No rollback of this release.'));
    return;
  }
  replace(root, h('ol', { class: 'rollback-list' }, rollbacks.slice(0, SHOWN).map((rb) => {
    const decided = parseTime(rb.decided_at);
    const completed = parseTime(rb.completed_at);
    // A drill blocks nothing, so it waits for no replay.
    const replay = rb.replay_passed === true ? passFail(true, 'replay passed', '')
      : rb.replay_passed === false ? passFail(false, '', 'replay failed')
        : rb.drill ? null : h('span', { class: 'pill recovery-pending' }, 'no replay yet');
    return h('li', { class: `rollback-item recovery-line-${RECOVERY.includes(rb.recovery_state) ? rb.recovery_state : 'unknown'}`,
      dataset: { rollbackId: rb.id, recovery: rb.recovery_state, drill: String(Boolean(rb.drill)) } },
    h('div', { class: 'rollback-head' },
      h('strong', {}, rb.drill ? 'Rollback drill' : 'Rolled back'),
      rb.baseline ? h('span', { class: 'muted' }, ' to ', h('code', {}, rb.baseline)) : null,
      h('span', { class: 'muted' }, ' in '), envLabel(rb.environment),
      h('span', { class: 'rollback-pills' }, recoveryPill(rb.recovery_state), replay)),
    rb.reason ? h('p', { class: 'rollback-reason', dataset: { field: 'reason' } }, rb.reason) : null,
    rb.has_report ? h('p', { class: 'rollback-report' }, reportLink(rb.id, 'Drill report →', 'drill-report')) : null,
    h('ol', { class: 'steps', 'aria-label': 'Rollback steps' },
      h('li', { class: 'step step-done' }, h('span', { class: 'step-name' }, 'Decided'),
        h('span', { class: 'step-when' }, when(rb.decided_at))),
      completed !== null
        ? h('li', { class: 'step step-done' }, h('span', { class: 'step-name' }, 'Completed'),
          h('span', { class: 'step-when' }, when(rb.completed_at), decided !== null
            ? h('span', { class: 'step-took', dataset: { field: 'took' } }, `after ${formatDuration(completed - decided)}`)
            : null))
        : h('li', { class: `step step-${rb.recovery_state === 'overdue' ? 'late' : 'open'}` },
          h('span', { class: 'step-name' }, rb.recovery_state === 'overdue' ? 'Overdue since' : 'Deadline'),
          h('span', { class: 'step-when' }, when(rb.deadline_at)))));
  })), more(rollbacks));
}

function renderReadiness(reports) {
  const root = $('#readiness');
  if (!reports.length) {
    replace(root, quiet('No readiness evaluation of this release.'));
    return;
  }
  replace(root, h('ul', { class: 'readiness-list' }, reports.slice(0, SHOWN).map((r) => {
    const failed = new Set(r.failed_checks || []);
    const checks = Object.entries(r.checks || {});
    return h('li', { class: 'readiness-item', dataset: { evidenceId: r.id, admitted: String(Boolean(r.admitted)) } },
      h('div', { class: 'readiness-head' }, passFail(r.admitted, 'admitted', 'not admitted'), ' ', envLabel(r.environment),
        h('span', { class: 'readiness-when' }, when(r.created_at))),
      failed.size ? h('p', { class: 'failed-checks', dataset: { field: 'failed-checks' } }, 'Failed: ',
        [...failed].map((name, i) => [i ? ', ' : '', h('strong', {}, name)])) : null,
      checks.length ? h('ul', { class: 'check-chips', 'aria-label': 'Checks' }, checks.map(([name, passed]) => {
        const label = `${passed ? '✓' : '✗'} ${name}`;
        // The rollback check names the rollback (or drill) it passed on: a drill's report is one click away.
        const used = name === 'rollback' && r.rollback && r.rollback.has_report ? r.rollback : null;
        return h('li', { class: `check-chip ${passed ? 'check-pass' : 'check-fail'}`, dataset: { check: name } },
          used ? reportLink(used.id, label, 'check-report') : label);
      }),
      h('li', { class: `check-chip ${r.replay_passed ? 'check-pass' : 'check-fail'}`, dataset: { check: 'replay' } },
        `${r.replay_passed ? '✓' : '✗'} replay`)) : null);
  })), more(reports));
}

function renderReplays(replays) {
  const root = $('#replays');
  if (!replays.length) {
    replace(root, quiet('No replay of this release.'));
    return;
  }
  const rows = replays.slice(0, SHOWN).map((r) => h('tr', { dataset: { replayId: r.id, passed: String(Boolean(r.passed)) } },
    h('td', { class: 'col-when' }, when(r.finished_at)),
    h('td', {}, h('code', { title: `${r.suite} ${r.suite_version} against ${r.target}` }, `${r.suite} ${r.suite_version}`)),
    h('td', {}, passFail(r.passed, 'passed', 'failed')),
    h('td', { class: 'num' }, `${formatCount(r.total - r.failed)}/${formatCount(r.total)}`),
    h('td', { class: 'num' }, r.p95_ms === null || r.p95_ms === undefined ? '—' : formatDuration(r.p95_ms))));
  replace(root, table('replay-table', [['Finished'], ['Suite'], ['Result'], ['Passed', 'num'], ['p95', 'num']], rows),
    more(replays));
}

function renderRollouts(rollouts) {
  const root = $('#rollouts');
  if (!rollouts.length) {
    replace(root, quiet('No rollout of this release.'));
    return;
  }
  const rows = rollouts.slice(0, SHOWN).map((r) => h('tr', { dataset: { rolloutId: r.id, state: r.state } },
    h('td', { class: 'col-when' }, when(r.created_at)),
    h('td', {}, h('code', {}, r.baseline), h('span', { class: 'muted' }, ' in '), envLabel(r.environment),
      h('span', { class: 'muted rollout-ratio' }, ` · ${formatPercent(Number(r.ratio))} of traffic`)),
    h('td', { class: 'col-decision' },
      h('span', { class: `pill rollout-${String(r.state).replace(/[^a-z_]/g, '')}` }, String(r.state).replace(/_/g, ' ')),
      // The full reason is long (every failing metric's): three lines here, the whole of it on hover.
      r.decision_reason ? h('p', { class: 'metric-reason rollout-reason', title: r.decision_reason, dataset: { field: 'decision' } }, r.decision_reason) : null),
    h('td', {}, r.last_verdict ? verdictPill(r.last_verdict) : h('span', { class: 'muted' }, '—'),
      h('span', { class: 'muted' }, ` ${r.consecutive_failures}/${r.max_failures} failing`))));
  replace(root, table('rollout-table', [['Started'], ['Canary against'], ['State'], ['Last analysis']], rows),
    more(rollouts));
}

// ---- the selected release -------------------------------------------------------------------------------

function statusBadges(timeline) {
  const parts = [];
  const latest = timeline.analyses[0];
  if (latest) {
    parts.push(h('span', { class: 'status-item', dataset: { field: 'latest-verdict' } }, 'Canary ', verdictPill(latest.verdict),
      h('span', { class: 'muted' }, ` ${scoreText(latest.score)}`)));
  }
  const real = timeline.rollbacks.filter((rb) => !rb.drill);
  if (real.length && real[0].replay_passed !== true) {
    parts.push(h('span', { class: 'pill verdict-fail status-blocked', dataset: { field: 'blocked' } },
      'blocked until a replay passes'));
  }
  const ready = timeline.readiness[0];
  if (ready) {
    parts.push(h('span', { class: 'status-item', dataset: { field: 'readiness' } }, 'Readiness ',
      passFail(ready.admitted, 'admitted', 'not admitted')));
  }
  return parts;
}

function renderEnvChoices(timeline) {
  const root = $('#release-envs');
  const choices = [['', 'All environments'], ...timeline.environments.map((env) => [env, env])];
  if (state.releaseEnvironment && !timeline.environments.includes(state.releaseEnvironment)) {
    choices.push([state.releaseEnvironment, state.releaseEnvironment]);
  }
  root.hidden = choices.length <= 2 && !state.releaseEnvironment;
  replace(root, choices.map(([value, text]) => h('button', {
    type: 'button', 'aria-pressed': String(value === state.releaseEnvironment), dataset: { env: value },
    onclick: () => { if (value !== state.releaseEnvironment) selectRelease(state.release, value); },
  }, text)));
}

function renderTimeline(timeline) {
  $('#release-title').textContent = timeline.release;
  // The overview takes the same filters: its cards, trend and failures of this release (and environment).
  const overview = new URLSearchParams({ window: state.window, release: timeline.release });
  if (state.releaseEnvironment) overview.set('environment', state.releaseEnvironment);
  $('#release-overview').setAttribute('href', `/?${overview}`);
  replace($('#release-status'), statusBadges(timeline));
  renderEnvChoices(timeline);
  const n = timeline.analyses.length;
  $('#canary-sub').textContent = n
    ? `Score (share of metrics that passed) of ${n} analys${n === 1 ? 'is' : 'es'}, oldest to newest`
    : 'Score (share of metrics that passed) of each analysis';
  renderCanaryChart($('#canary-chart'), timeline.analyses, timeline.rollbacks);
  renderAnalyses(timeline.analyses);
  renderRollbacks(timeline.rollbacks);
  renderReadiness(timeline.readiness);
  renderReplays(timeline.replays);
  renderRollouts(timeline.rollouts);
}

async function loadTimeline() {
  const token = ++tokens.timeline;
  const detail = $('#release-detail');
  if (!state.release) {
    detail.hidden = true;
    detail.dataset.state = 'none';
    return;
  }
  detail.hidden = false;
  detail.setAttribute('aria-busy', 'true');
  detail.dataset.state = 'loading';
  $('#release-title').textContent = state.release;
  let timeline;
  try {
    timeline = await getJSON(`${API}/timeline`, {
      release: state.release, environment: state.releaseEnvironment || undefined,
    });
  } catch (error) {
    if (token !== tokens.timeline) return;
    detail.removeAttribute('aria-busy');
    detail.dataset.state = 'error';
    replace($('#release-status'));
    replace($('#timeline-problem'), problem(error instanceof ApiError && error.status === 404
      ? `No release “${state.release}” has been seen: no event carries it and no gate recorded it.`
      : explain(error, 'load the release timeline')));
    $('.release-grid', detail).hidden = true;
    $('#release-envs').hidden = true;
    return;
  }
  if (token !== tokens.timeline) return;
  replace($('#timeline-problem'));
  $('.release-grid', detail).hidden = false;
  renderTimeline(timeline);
  detail.removeAttribute('aria-busy');
  detail.dataset.state = 'ready';
}

// ---- wiring ---------------------------------------------------------------------------------------

function syncControls() {
  for (const button of $$('[data-window]')) button.setAttribute('aria-pressed', String(button.dataset.window === state.window));
  $('#env-filter').value = state.environment;
  $('#releases-range').textContent = `Releases first or last seen in the ${WINDOW_NAMES[state.window]}` +
    (state.environment ? ` · ${state.environment}` : ' · all environments');
}

async function load() {
  const root = $('#releases-root');
  document.body.dataset.ready = 'false';
  root.setAttribute('aria-busy', 'true');
  syncControls();
  await Promise.allSettled([loadList(), loadTimeline(), loadReport()]);
  root.removeAttribute('aria-busy');
  root.dataset.state = 'ready';
  document.body.dataset.ready = 'true';
}

function update(changes) {
  state = { ...state, ...changes };
  writeUrl(true);
  return load();
}

export function initReleases() {
  state = readUrl();
  writeUrl(false);
  for (const button of $$('[data-window]')) {
    button.addEventListener('click', () => { if (button.dataset.window !== state.window) update({ window: button.dataset.window }); });
  }
  $('#env-filter').addEventListener('change', (event) => update({ environment: event.target.value }));
  $('#open-release').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $('#release-input').value.trim();
    if (!name) return;
    $('#release-input').value = '';
    selectRelease(name.slice(0, 128), '');
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

if (document.body.dataset.page === 'releases') initReleases();
