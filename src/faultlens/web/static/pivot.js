// A pivot page (/traces/{id}, /correlations/{id}, /requests/{id}): every event and evidence span sharing the id,
// as a waterfall.

import { $, ApiError, getJSON, h, replace } from './lib.js';
import { pivotApi, pivotHref, summary, waterfall } from './waterfall.js';

const TITLES = { trace: 'Trace', correlation: 'Correlation', request: 'Request' };

function render(root, kind, id, view) {
  document.title = `${TITLES[kind]} ${id} · faultlens`;
  const traces = kind === 'trace' ? [] : view.trace_ids;
  replace(root,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '/' }, 'Dashboard'), ' / ',
      h('span', {}, TITLES[kind])),
    h('header', { class: 'event-head' },
      h('div', { class: 'event-title-row' },
        h('h1', { class: 'event-title' }, h('span', { class: 'muted' }, `${TITLES[kind]} `), id)),
      h('p', { class: 'event-meta', dataset: { field: 'summary' } }, summary(view))),
    h('section', { class: 'panel', id: 'waterfall' },
      h('header', { class: 'panel-head' }, h('h2', {}, 'Steps'),
        h('p', { class: 'panel-sub' }, 'Events and failed downstream spans in time order; the failing step is the '
          + 'earliest failed span, else the earliest failed event.')),
      waterfall(view)),
    traces.length ? h('section', { class: 'panel', id: 'traces' },
      h('header', { class: 'panel-head' }, h('h2', {}, 'Traces')),
      h('ul', { class: 'wf-trace-list' }, traces.map((t) => h('li', {},
        h('a', { href: pivotHref('trace', t), class: 'pivot-link' }, h('code', {}, t)))))) : null);
}

export function initPivot() {
  const root = $('#pivot-root');
  const kind = root.dataset.pivot;
  const id = root.dataset.pivotId;
  const load = async () => {
    document.body.dataset.ready = 'false';
    root.setAttribute('aria-busy', 'true');
    try {
      render(root, kind, id, await getJSON(pivotApi(kind, id)));
      root.dataset.state = 'ready';
    } catch (error) {
      const text = error instanceof ApiError && error.status === 404 ? `No events or spans with ${kind} id “${id}”.`
        : error instanceof ApiError && error.status === 401 ? 'An API key is needed to show this page.'
          : `Could not load the ${kind}: ${error.message}`;
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
