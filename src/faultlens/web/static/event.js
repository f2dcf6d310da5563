// The event page: the full (redacted) message, the classification with the rule that decided it, the
// fingerprint, the waterfall of its trace, and the events sharing its trace or correlation id. Every id links
// to its pivot page.

import {
  $, ApiError, CLASS_NAMES, eventHref, formatDuration, formatFull, formatRelative, formatWhen, getJSON, h, replace,
} from './lib.js';
import { pivotApi, pivotHref, summary, waterfall } from './waterfall.js';

const CLASSES = ['service_failure', 'client_failure', 'client_abort', 'none'];

function classBadge(cls) {
  return h('span', { class: `badge badge-${CLASSES.includes(cls) ? cls : 'none'}`, dataset: { field: 'failure_class' } },
    CLASS_NAMES[cls] || String(cls));
}

function field(label, value, { code = false, name, optional = false, pivot } = {}) {
  // Optional facts the event does not carry are left out rather than listed as dashes.
  if (optional && (value === null || value === undefined || value === '')) return null;
  const shown = value === null || value === undefined || value === '' ? '—' : String(value);
  let content = code && shown !== '—' ? h('code', {}, shown) : shown;
  if (pivot && shown !== '—') content = h('a', { href: pivotHref(pivot, shown), class: 'pivot-link' }, content);
  return [h('dt', {}, label), h('dd', { dataset: name ? { field: name } : {} }, content)];
}

async function loadTrace(panel, ev) {
  // The waterfall comes after the event itself: a slow or failing trace read never hides the event.
  const body = panel.querySelector('.trace-body');
  try {
    const view = await getJSON(pivotApi('trace', ev.trace_id));
    replace(body, h('p', { class: 'panel-sub wf-summary' }, summary(view), ' · ',
      h('a', { href: pivotHref('trace', ev.trace_id), class: 'pivot-link' }, 'open trace')),
    waterfall(view, { currentEventId: ev.id }));
    panel.dataset.state = 'ready';
  } catch (error) {
    replace(body, h('p', { class: 'empty-note', dataset: { state: 'error' } },
      `Could not load the trace: ${error.message}`));
    panel.dataset.state = 'error';
  }
}

function related(ev) {
  const items = ev.related || [];
  if (!items.length) {
    const linked = ev.trace_id || ev.correlation_id;
    return h('p', { class: 'empty-note' }, linked ? 'No other events share this trace or correlation id.'
      : 'This event has no trace or correlation id.');
  }
  return h('div', { class: 'table-wrap' }, h('table', { class: 'data-table related-table' },
    h('thead', {}, h('tr', {}, ['When', 'Source', 'Status', 'Class', 'Kind', 'Shares'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, items.map((item) => {
      const via = item.trace_id && item.trace_id === ev.trace_id ? 'trace' : 'correlation';
      return h('tr', { dataset: { eventId: item.id } },
        h('td', { class: 'col-when' }, h('time', { datetime: item.occurred_at, title: item.occurred_at },
          formatWhen(item.occurred_at))),
        h('td', {}, h('a', { href: eventHref(item.id), class: 'related-link' }, item.source),
          item.operation ? h('span', { class: 'muted op-name' }, item.operation) : null),
        h('td', {}, item.http_status ? `${item.status} · ${item.http_status}` : item.status),
        h('td', {}, classBadge(item.failure_class)),
        h('td', {}, h('code', { class: 'kind-chip' }, item.failure_kind)),
        h('td', { class: 'muted' }, `same ${via}`));
    }))));
}

function render(root, ev) {
  const message = ev.error_message || ev.error_code || '';
  document.title = `${ev.failure_kind} · ${ev.source} · faultlens`;
  const attributes = Object.entries(ev.attributes || {});
  const fp = ev.fingerprint;
  replace(root,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/' }, 'Dashboard'), ' / ',
      h('span', {}, 'Event'), ' ', h('code', { class: 'muted' }, ev.id)),
    h('header', { class: 'event-head' },
      h('div', { class: 'event-title-row' },
        h('h1', { class: 'event-title', dataset: { field: 'failure_kind' } }, ev.failure_kind),
        classBadge(ev.failure_class),
        ev.failure_class !== 'none'
          ? h('span', { class: `pill ${ev.is_actionable ? 'pill-actionable' : 'pill-quiet'}` },
            ev.is_actionable ? 'Actionable' : 'Not actionable') : null),
      h('p', { class: 'event-meta' }, h('strong', { dataset: { field: 'source' } }, ev.source),
        ev.operation ? ` · ${ev.operation}` : '', ' · ',
        h('time', { datetime: ev.occurred_at, title: ev.occurred_at }, formatFull(ev.occurred_at)),
        h('span', { class: 'muted' }, ` (${formatRelative(ev.occurred_at)})`))),
    h('div', { class: 'event-grid' },
      h('div', { class: 'event-main' },
        h('section', { class: 'panel' },
          h('header', { class: 'panel-head' }, h('h2', {}, 'Message'),
            h('p', { class: 'panel-sub' }, 'Redacted at ingest: secrets and tokens never reach storage.')),
          message ? h('pre', { class: `message message-${CLASSES.includes(ev.failure_class) ? ev.failure_class : 'none'}`,
            dataset: { field: 'message' } }, message)
            : h('p', { class: 'empty-note' }, 'This event carries no message.')),
        ev.trace_id ? h('section', { class: 'panel', id: 'trace', dataset: { state: 'loading' } },
          h('header', { class: 'panel-head' }, h('h2', {}, 'Trace'),
            h('p', { class: 'panel-sub' }, 'Its events and failed downstream spans in time order; the failing step '
              + 'is the earliest failed span, else the earliest failed event.')),
          h('div', { class: 'trace-body' }, h('p', { class: 'empty-note quiet' }, 'Loading trace…'))) : null,
        h('section', { class: 'panel', id: 'related' },
          h('header', { class: 'panel-head' }, h('h2', {}, 'Related events'),
            h('p', { class: 'panel-sub' }, 'Sharing this trace id or correlation id, oldest first.')),
          related(ev)),
        attributes.length ? h('section', { class: 'panel', id: 'attributes' },
          h('header', { class: 'panel-head' }, h('h2', {}, 'Attributes')),
          h('dl', { class: 'facts' }, attributes.map(([k, v]) => field(k, typeof v === 'string' ? v : JSON.stringify(v),
            { code: true })))) : null),
      h('aside', { class: 'event-side' },
        h('section', { class: 'panel', id: 'classification' },
          h('header', { class: 'panel-head' }, h('h2', {}, 'Classification')),
          h('dl', { class: 'facts' },
            field('Class', CLASS_NAMES[ev.failure_class] || ev.failure_class, { name: 'class' }),
            field('Kind', ev.failure_kind, { code: true, name: 'kind' }),
            field('Category', ev.category, { name: 'category' }),
            field('Actionable', ev.is_actionable ? 'yes' : 'no', { name: 'is_actionable' }),
            field('Retryable', ev.retryable ? 'yes' : 'no', { name: 'retryable' }),
            field('Decided by rule', ev.rule_name, { code: true, name: 'rule_name' }),
            field('Rule pack', ev.rule_version, { code: true, name: 'rule_version' }))),
        h('section', { class: 'panel', id: 'fingerprint' },
          h('header', { class: 'panel-head' }, h('h2', {}, 'Fingerprint')),
          fp ? [h('pre', { class: 'template', dataset: { field: 'template' } }, fp.template),
            h('dl', { class: 'facts' }, field('Id', fp.id, { code: true, name: 'fingerprint_id' }),
              field('First seen', formatFull(fp.first_seen)), field('Last seen', formatFull(fp.last_seen)))]
            : h('p', { class: 'empty-note' }, 'No fingerprint: successful events and events without a message have none.')),
        h('section', { class: 'panel', id: 'details' },
          h('header', { class: 'panel-head' }, h('h2', {}, 'Details')),
          h('dl', { class: 'facts' },
            field('Status', ev.status), field('HTTP status', ev.http_status, { optional: true }),
            field('Error code', ev.error_code, { code: true, optional: true }),
            field('Item type', ev.item_type),
            field('Duration', ev.duration_ms == null ? null : formatDuration(ev.duration_ms), { optional: true }),
            field('Attempt', ev.attempt == null ? null : `${ev.attempt}${ev.max_attempts ? ` of ${ev.max_attempts}` : ''}`,
              { optional: true }),
            field('Trace id', ev.trace_id, { code: true, name: 'trace_id', pivot: 'trace' }),
            field('Correlation id', ev.correlation_id, { code: true, name: 'correlation_id', pivot: 'correlation' }),
            field('Span id', ev.span_id, { code: true, optional: true }),
            field('Request id', ev.request_id, { code: true, optional: true, name: 'request_id', pivot: 'request' }),
            field('Job id', ev.job_id, { code: true, optional: true }),
            field('Release', ev.release, { optional: true }), field('Environment', ev.environment, { optional: true }),
            field('Received', formatFull(ev.received_at)))))));
}

export function initEvent() {
  const root = $('#event-root');
  const id = document.body.dataset.eventId;
  const load = async () => {
    document.body.dataset.ready = 'false';
    root.setAttribute('aria-busy', 'true');
    try {
      const ev = await getJSON(`/api/v1/events/${encodeURIComponent(id)}`);
      render(root, ev);
      root.dataset.state = 'ready';
      const panel = $('#trace', root);
      if (panel) await loadTrace(panel, ev);
    } catch (error) {
      const text = error instanceof ApiError && error.status === 404 ? `No event with id “${id}”.`
        : error instanceof ApiError && error.status === 401 ? 'An API key is needed to show this event.'
          : `Could not load the event: ${error.message}`;
      replace(root, h('nav', { class: 'crumbs' }, h('a', { href: '/' }, 'Dashboard')),
        h('section', { class: 'panel' }, h('p', { class: 'empty-note', dataset: { state: 'error' } }, text)));
      root.dataset.state = 'error';
    }
    root.removeAttribute('aria-busy');
    document.body.dataset.ready = 'true';
  };
  load();
  return { reload: load };
}
