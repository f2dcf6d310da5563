// The waterfall of a trace, correlation or request (GET /api/v1/traces/{id} and its siblings): one row per
// event or evidence span, its bar offset and sized by time, the failing step highlighted.

import { eventHref, formatDuration, formatFull, h } from './lib.js';

const PIVOT_PATHS = { trace: 'traces', correlation: 'correlations', request: 'requests' };

/** The dashboard page of a pivot; the id is path-encoded so it stays one path segment. */
export function pivotHref(kind, id) {
  return `/${PIVOT_PATHS[kind]}/${encodeURIComponent(id)}`;
}

/** The API path of a pivot. */
export function pivotApi(kind, id) {
  return `/api/v1/${PIVOT_PATHS[kind]}/${encodeURIComponent(id)}`;
}

function barClass(step) {
  if (step.failing) return 'wf-bar wf-bar-failing';
  if (!step.failed) return step.kind === 'span' ? 'wf-bar wf-bar-span' : 'wf-bar wf-bar-ok';
  return `wf-bar wf-bar-${step.kind === 'event' && step.failure_class ? step.failure_class : 'service_failure'}`;
}

function label(step, currentEventId) {
  const current = step.kind === 'event' && step.id === currentEventId;
  const name = step.kind === 'event' && !current
    ? h('a', { href: eventHref(step.id), class: 'wf-name', title: step.name }, step.name)
    : h('span', { class: 'wf-name', title: step.name }, step.name);
  return h('div', { class: 'wf-label' },
    h('span', { class: `wf-kind wf-kind-${step.kind}` }, step.kind === 'span' ? (step.span_kind || 'span') : 'event'),
    name,
    current ? h('span', { class: 'pill pill-quiet wf-here' }, 'this event') : null,
    step.failing ? h('span', { class: 'pill wf-root', title: 'The earliest failed evidence span, else the earliest failed event' },
      'failing step') : null,
    h('span', { class: 'wf-source muted' }, step.source,
      step.http_status ? ` · ${step.http_status}` : '', ` · ${step.status}`));
}

function row(step, total, currentEventId) {
  const left = total > 0 ? (step.start_offset_ms / total) * 100 : 0;
  const width = total > 0 ? (step.duration_ms / total) * 100 : 100;
  const bar = h('span', { class: barClass(step) });
  // CSSOM, not a style attribute: the page's CSP refuses inline styles.
  bar.style.left = `${Math.min(left, 99.5).toFixed(3)}%`;
  bar.style.width = `${Math.max(Math.min(width, 100 - left), 0.5).toFixed(3)}%`;
  const timing = `+${formatDuration(step.start_offset_ms)} · ${formatDuration(step.duration_ms)}`;
  const tip = [formatFull(step.started_at), step.error_message].filter(Boolean).join('\n');
  return h('li', {
    class: `wf-row${step.failing ? ' wf-failing' : ''}${step.failed ? ' wf-failed' : ''}`,
    dataset: { kind: step.kind, stepId: step.id, failing: String(step.failing), offset: String(step.start_offset_ms),
      duration: String(step.duration_ms) },
  },
  label(step, currentEventId),
  h('div', { class: 'wf-track', title: tip }, bar),
  h('div', { class: 'wf-timing muted' }, timing),
  step.failing && step.error_message ? h('p', { class: 'wf-message' }, step.error_message) : null);
}

/** The waterfall of a pivot answer; `currentEventId` marks the event whose page shows it. */
export function waterfall(view, { currentEventId = null } = {}) {
  const total = Math.max(view.duration_ms, 1);
  const steps = view.steps || [];
  return h('div', { class: 'waterfall' },
    h('div', { class: 'wf-axis muted', 'aria-hidden': 'true' },
      h('span', {}, formatFull(view.started_at)),
      h('span', { class: 'wf-scale' }, h('span', {}, '0 ms'), h('span', {}, formatDuration(view.duration_ms))),
      h('span', {}, 'start · duration')),
    h('ol', { class: 'wf-rows', 'aria-label': 'Steps in time order' }, steps.map((step) => row(step, total, currentEventId))),
    view.truncated ? h('p', { class: 'empty-note quiet' }, 'Only the first 500 events and 500 spans are shown.') : null);
}

/** One line summing a pivot up: its counts, its duration, and the failing step. */
export function summary(view) {
  const failing = view.failing_step === null ? null : view.steps[view.failing_step];
  return `${view.event_count} event${view.event_count === 1 ? '' : 's'} · ${view.span_count} evidence span`
    + `${view.span_count === 1 ? '' : 's'} · ${formatDuration(view.duration_ms)}`
    + (failing ? ` · failing step: ${failing.name}` : ' · nothing failed');
}
