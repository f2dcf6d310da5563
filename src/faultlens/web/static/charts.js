// Small SVG charts: a donut for the error distribution and a stacked area + rate line for the trend.
// Colours come from CSS classes so both themes (and per-scope palettes) stay in the stylesheet.

import { clear, formatCompact, formatCount, formatPercent, formatTick, h, s } from './lib.js';

const PALETTE_SIZE = 8;

function niceScale(max, ticks, integer) {
  if (!(max > 0)) return { max: integer ? ticks : 0.01 * ticks, step: integer ? 1 : 0.01 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  let step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  if (integer) step = Math.max(1, Math.ceil(step));
  return { max: step * Math.ceil(max / step), step };
}

function share(count, total) {
  return total > 0 ? count / total : 0;
}

/**
 * The error distribution: donut + legend. `root` keeps its own attributes (data-testid, data-scope);
 * each legend entry carries data-kind and data-count, the exact count it shows.
 */
export function renderDonut(root, { items, total, scopeLabel, windowLabel }) {
  clear(root);
  const sum = total || items.reduce((acc, item) => acc + item.count, 0);
  const top = items.slice(0, 3).map((item) => `${item.failure_kind} ${formatCount(item.count)}`).join(', ');
  const label = items.length
    ? `Error distribution, ${scopeLabel}, ${windowLabel}: ${formatCount(sum)} failures in ${items.length} ` +
      `kind${items.length === 1 ? '' : 's'}; largest: ${top}.`
    : `Error distribution, ${scopeLabel}, ${windowLabel}: no failures.`;

  const svg = s('svg', { class: 'donut', viewBox: '0 0 200 200', role: 'img', 'aria-label': label },
    s('title', { text: label }),
    s('circle', { class: 'donut-track', cx: 100, cy: 100, r: 78, fill: 'none', 'stroke-width': 30 }));
  const ring = s('g', { transform: 'rotate(-90 100 100)' });
  svg.appendChild(ring);
  const segments = [];
  let start = 0;
  const gap = items.length > 1 ? 4 : 0;
  items.forEach((item, i) => {
    const length = share(item.count, sum) * 1000;
    const drawn = Math.max(length - gap, Math.min(length, 1.5));
    const slot = i < PALETTE_SIZE ? String(i) : 'other';
    const segment = s('circle', {
      class: `donut-seg seg-${slot}`, cx: 100, cy: 100, r: 78, fill: 'none', 'stroke-width': 30,
      pathLength: 1000, 'stroke-dasharray': `${drawn} ${1000 - drawn}`, 'stroke-dashoffset': -start,
    }, s('title', { text: `${item.failure_kind}: ${formatCount(item.count)} (${formatPercent(share(item.count, sum))})` }));
    ring.appendChild(segment);
    segments.push(segment);
    start += length;
  });
  svg.appendChild(s('text', { class: 'donut-total', x: 100, y: 100, 'text-anchor': 'middle' }, formatCount(sum)));
  svg.appendChild(s('text', { class: 'donut-caption', x: 100, y: 122, 'text-anchor': 'middle' },
    sum === 1 ? 'failure' : 'failures'));

  const legend = h('ul', { class: 'legend', 'aria-label': `Failure kinds, ${scopeLabel}` });
  items.forEach((item, i) => {
    const slot = i < PALETTE_SIZE ? String(i) : 'other';
    const entry = h('li', {
      class: 'legend-item', tabindex: 0,
      dataset: { kind: item.failure_kind, count: String(item.count) },
    },
    h('span', { class: `swatch seg-${slot}`, 'aria-hidden': 'true' }),
    h('span', { class: 'legend-kind', title: item.failure_kind }, item.failure_kind),
    h('span', { class: 'legend-count' }, formatCount(item.count)),
    h('span', { class: 'legend-share' }, formatPercent(share(item.count, sum))));
    const on = () => { root.classList.add('has-active'); segments[i].classList.add('is-active'); };
    const off = () => { root.classList.remove('has-active'); segments[i].classList.remove('is-active'); };
    entry.addEventListener('mouseenter', on);
    entry.addEventListener('mouseleave', off);
    entry.addEventListener('focus', on);
    entry.addEventListener('blur', off);
    legend.appendChild(entry);
  });
  const body = h('div', { class: 'donut-wrap' }, h('div', { class: 'donut-figure' }, svg));
  if (items.length) body.appendChild(legend);
  else body.appendChild(h('p', { class: 'empty-note' }, `No failures in this scope for the ${windowLabel}.`));
  root.appendChild(body);
}

const SERIES = [
  { key: 'service', label: 'Service failures', css: 'area-service' },
  { key: 'client', label: 'Client failures', css: 'area-client' },
  { key: 'abort', label: 'Client aborts', css: 'area-abort' },
];

function trendLegend(hasClasses, deploys, showRate) {
  const series = hasClasses ? SERIES : [{ key: 'failures', label: 'Failures', css: 'area-failures' }];
  return h('ul', { class: 'trend-legend', 'aria-hidden': 'true' },
    series.map((item) => h('li', {}, h('span', { class: `swatch ${item.css}` }), item.label)),
    showRate ? h('li', {}, h('span', { class: 'swatch line-rate' }), 'Actionable failure rate (right axis)') : null,
    deploys ? h('li', {}, h('span', { class: 'swatch swatch-deploy' }), 'Release first seen') : null);
}

/** Deploy markers inside [t0, t1]: {release, environment, t}, oldest first (GET /api/v1/releases `markers`). */
function markersWithin(markers, t0, t1) {
  return (markers || []).map((m) => ({
    release: String(m.release ?? ''), environment: String(m.environment ?? ''),
    t: typeof m.at === 'number' ? m.at : Date.parse(m.at),
  })).filter((m) => m.release && Number.isFinite(m.t) && m.t >= t0 && m.t <= t1).sort((a, b) => a.t - b.t);
}

/**
 * Failures per bucket (stacked by class when the data has classes) and the actionable failure rate.
 * buckets: [{t, failures, service?, client?, abort?, rate}] with t the bucket start in epoch ms.
 * markers: [{release, environment, at}] deploy markers (a release's first event), drawn where they fall in the chart.
 * showRate: false for counts alone (a failure group's events): no rate line, right axis or rate legend.
 */
export function renderTrend(root, { buckets, bucketMs, windowLabel, bucketLabel, hasClasses, markers = [], showRate = true }) {
  clear(root);
  root._trend = { buckets, bucketMs, windowLabel, bucketLabel, hasClasses, markers, showRate };
  const width = Math.max(280, Math.floor(root.clientWidth || 600));
  const compact = width < 520;
  const height = compact ? 190 : 230;
  const m = { l: 40, r: 46, t: 24, b: 26 };
  const pw = width - m.l - m.r;
  const ph = height - m.t - m.b;
  const n = buckets.length;
  const t0 = buckets[0].t;
  const t1 = buckets[n - 1].t + bucketMs;
  const span = t1 - t0;
  const x = (t) => m.l + ((t - t0) / span) * pw;
  const mid = (b) => x(b.t + bucketMs / 2);

  const maxFailures = Math.max(...buckets.map((b) => b.failures));
  const rates = showRate ? buckets.map((b) => b.rate).filter((r) => Number.isFinite(r)) : [];
  const yScale = niceScale(maxFailures, 4, true);
  const rScale = niceScale(Math.max(...rates, 0), 4, false);
  const y = (v) => m.t + ph - (v / yScale.max) * ph;
  const yr = (v) => m.t + ph - (v / rScale.max) * ph;

  const total = buckets.reduce((acc, b) => acc + b.failures, 0);
  const peak = buckets.reduce((best, b) => (b.failures > best.failures ? b : best), buckets[0]);
  const deploys = markersWithin(markers, t0, t1);
  const label = `Failures per ${bucketLabel} over the ${windowLabel}: ${formatCount(total)} in total, peak ` +
    `${formatCount(peak.failures)} at ${formatTick(peak.t, span)}` +
    (rates.length ? `; actionable failure rate from ${formatPercent(Math.min(...rates))} to ` +
      `${formatPercent(Math.max(...rates))}` : '') +
    (deploys.length ? `; releases first seen: ${deploys.map((d) => `${d.release} at ${formatTick(d.t, span)}`)
      .join(', ')}.` : '.');

  const svg = s('svg', {
    class: 'trend', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label,
  }, s('title', { text: label }));

  const grid = s('g', { class: 'grid' });
  for (let v = 0; v <= yScale.max + 1e-9; v += yScale.step) {
    grid.appendChild(s('line', { x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v) }));
    grid.appendChild(s('text', { class: 'tick', x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, formatCompact(v)));
  }
  for (let v = 0; showRate && v <= rScale.max + 1e-9; v += rScale.step) {
    grid.appendChild(s('text', { class: 'tick tick-rate', x: m.l + pw + 6, y: yr(v) + 4, 'text-anchor': 'start' },
      formatPercent(v)));
  }
  const labels = compact ? 3 : 6;
  const every = Math.max(1, Math.ceil(n / labels));
  for (let i = 0; i < n; i += every) {
    grid.appendChild(s('text', { class: 'tick', x: mid(buckets[i]), y: height - 6, 'text-anchor': 'middle' },
      formatTick(buckets[i].t, span)));
  }
  // Units of both axes, written where each axis starts.
  grid.appendChild(s('text', { class: 'axis-unit', x: m.l - 6, y: 10, 'text-anchor': 'start' }, `failures per ${bucketLabel}`));
  if (showRate) {
    grid.appendChild(s('text', { class: 'axis-unit axis-unit-rate', x: m.l + pw + 6, y: 10, 'text-anchor': 'end' },
      'actionable rate'));
  }
  svg.appendChild(grid);

  const keys = hasClasses ? SERIES : [{ key: 'failures', css: 'area-failures' }];
  const base = buckets.map(() => 0);
  for (const series of keys) {
    const top = buckets.map((b, i) => base[i] + (b[series.key] || 0));
    const upper = buckets.map((b, i) => `${mid(b).toFixed(1)},${y(top[i]).toFixed(1)}`);
    const lower = buckets.map((b, i) => `${mid(b).toFixed(1)},${y(base[i]).toFixed(1)}`).reverse();
    if (n === 1) {
      const bx = mid(buckets[0]);
      svg.appendChild(s('rect', { class: series.css, x: bx - 6, width: 12, y: y(top[0]),
        height: Math.max(0, y(base[0]) - y(top[0])) }));
    } else {
      svg.appendChild(s('path', { class: series.css, d: `M${upper.join('L')}L${lower.join('L')}Z` }));
      svg.appendChild(s('path', { class: `${series.css}-edge`, d: `M${upper.join('L')}`, fill: 'none' }));
    }
    top.forEach((v, i) => { base[i] = v; });
  }
  svg.appendChild(s('line', { class: 'axis', x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph }));

  const ratePoints = buckets.filter((b) => Number.isFinite(b.rate));
  if (ratePoints.length > 1) {
    const d = ratePoints.map((b, i) => `${i ? 'L' : 'M'}${mid(b).toFixed(1)},${yr(b.rate).toFixed(1)}`).join('');
    svg.appendChild(s('path', { class: 'line-rate', d, fill: 'none' }));
  }
  if (ratePoints.length <= 48) {
    for (const b of ratePoints) svg.appendChild(s('circle', { class: 'dot-rate', cx: mid(b), cy: yr(b.rate), r: 2.5 }));
  }

  // Deploy markers: a dashed line where each release was first seen. A label that would run into the previous
  // one is left out; its line keeps the release name as a tooltip.
  let lastEnd = -Infinity;
  // One environment (or a filtered chart): the release names its marker; several: the environment is added.
  const manyEnvironments = new Set(deploys.map((d) => d.environment)).size > 1;
  for (const d of deploys) {
    const mx = x(d.t);
    const name = d.environment ? `${d.release} (${d.environment})` : d.release;
    svg.appendChild(s('line', {
      class: 'deploy-marker', x1: mx, x2: mx, y1: m.t, y2: m.t + ph, dataset: { release: d.release, environment: d.environment },
    }, s('title', { text: `${name} first seen ${formatTick(d.t, 2 * 86400e3)}` })));
    const short = d.release.length > 18 ? `${d.release.slice(0, 17)}…` : d.release;
    const text = manyEnvironments && d.environment ? `${short} · ${d.environment.slice(0, 12)}` : short;
    const room = text.length * 6.2 + 8;
    const right = mx + room > m.l + pw;
    if ((right ? mx - room : mx) < lastEnd) continue;
    svg.appendChild(s('text', {
      class: 'deploy-label', x: right ? mx - 4 : mx + 4, y: m.t + 10, 'text-anchor': right ? 'end' : 'start',
      dataset: { release: d.release },
    }, text));
    lastEnd = right ? mx + 4 : mx + room;
  }

  // Hover: a guide line and a tooltip for the bucket under the pointer.
  const guide = s('line', { class: 'guide', x1: 0, x2: 0, y1: m.t, y2: m.t + ph, visibility: 'hidden' });
  svg.appendChild(guide);
  const tip = h('div', { class: 'chart-tip', hidden: true, 'aria-hidden': 'true' });
  const overlay = s('rect', { class: 'overlay', x: m.l, y: m.t, width: pw, height: ph, fill: 'transparent' });
  overlay.addEventListener('pointermove', (event) => {
    const box = svg.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * width;
    const i = Math.min(n - 1, Math.max(0, Math.floor(((px - m.l) / pw) * n)));
    const b = buckets[i];
    guide.setAttribute('x1', mid(b));
    guide.setAttribute('x2', mid(b));
    guide.setAttribute('visibility', 'visible');
    const rows = [['Failures', formatCount(b.failures)]];
    if (hasClasses) {
      rows.push(['Service', formatCount(b.service)], ['Client', formatCount(b.client)], ['Abort', formatCount(b.abort)]);
    }
    if (showRate) rows.push(['Actionable rate', formatPercent(b.rate)]);
    // Sub-day buckets need the date too: an hourly 24h chart crosses midnight.
    tip.replaceChildren(h('div', { class: 'tip-title' }, formatTick(b.t, bucketMs >= 86400e3 ? span : 2 * 86400e3)),
    ...rows.map(([k, v]) => h('div', { class: 'tip-row' }, h('span', {}, k), h('strong', {}, v))));
    tip.hidden = false;
    const left = (mid(b) / width) * box.width;
    tip.style.left = `${Math.min(Math.max(left, 70), box.width - 70)}px`;
  });
  overlay.addEventListener('pointerleave', () => {
    guide.setAttribute('visibility', 'hidden');
    tip.hidden = true;
  });
  svg.appendChild(overlay);

  // Wrapped: a table ignores the 1px box of .visually-hidden and would widen the page.
  const table = h('div', { class: 'visually-hidden' }, h('table', {},
    h('caption', {}, `Failures per ${bucketLabel}, ${windowLabel}`),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Bucket start'), h('th', { scope: 'col' }, 'Failures'),
      hasClasses ? [h('th', { scope: 'col' }, 'Service'), h('th', { scope: 'col' }, 'Client'),
        h('th', { scope: 'col' }, 'Abort')] : null,
      showRate ? h('th', { scope: 'col' }, 'Actionable failure rate') : null)),
    h('tbody', {}, buckets.map((b) => h('tr', {},
      h('th', { scope: 'row' }, new Date(b.t).toISOString()), h('td', {}, formatCount(b.failures)),
      hasClasses ? [h('td', {}, formatCount(b.service)), h('td', {}, formatCount(b.client)),
        h('td', {}, formatCount(b.abort))] : null,
      showRate ? h('td', {}, formatPercent(b.rate)) : null)))));

  root.append(h('div', { class: 'trend-canvas' }, svg, tip), trendLegend(hasClasses, deploys.length > 0, showRate), table);
  if (!root._observer && 'ResizeObserver' in window) {
    let lastWidth = width;
    root._observer = new ResizeObserver(() => {
      const now = Math.floor(root.clientWidth);
      if (root._trend && Math.abs(now - lastWidth) > 8) {
        lastWidth = now;
        renderTrend(root, root._trend);
      }
    });
    root._observer.observe(root);
  }
}

export function renderChartMessage(root, text) {
  root._trend = null;
  clear(root);
  root.appendChild(h('p', { class: 'empty-note chart-empty' }, text));
}
