// ------------------------------------------------------------------ performance: the audience's verdict
//
// The figures imported from ad platforms (`runner metrics import`), through the statistics of
// `runner metrics show` (runner/metrics/stats.py), embedded by the report as DATA.performance
// (runner/review/performance.py): per dimension, its values ranked by the chosen metric with
// 95 % intervals, impressions, the chance each is best and the verdict; the reviewers' stars
// beside them; per video, a table whose rows lead to the card; the imports and whether their
// delivery was randomised. No figures: no view, and its toolbar button is hidden
// (docs/report-page.md, "Performance").

const PERF = DATA.performance && typeof DATA.performance === 'object' ? DATA.performance : null;
const PERF_METRICS = { ctr: 'CTR', completion: 'completion rate', cost_per_result: 'cost per result' };
const PF = { metric: 'ctr' };

function perfMetrics() {
  const by = (PERF && PERF.by_metric) || {};
  return Object.keys(PERF_METRICS).filter((m) => m === 'ctr' || by[m] ||
    (PERF.variants || []).some((v) => v[m]));
}
// The dimensions ranked by the chosen metric: its own statistics when embedded (p_best and
// verdict for that metric), else CTR's.
function perfDimensions() {
  const by = PERF.by_metric && PERF.by_metric[PF.metric];
  return (by && by.dimensions) || PERF.dimensions || [];
}
function perfCurrency() {
  const cs = new Set((PERF.variants || []).map((v) => v.currency || ''));
  return cs.size === 1 ? Array.from(cs)[0] : '';
}
function fmtRate(x) { return (100 * x).toFixed(x < 0.1 ? 2 : 1) + ' %'; }
function fmtMetric(metric, x) {
  if (x === null || x === undefined) return '–';
  if (metric === 'cost_per_result') { const c = perfCurrency(); return (c ? c + ' ' : '') + x.toFixed(2); }
  return fmtRate(x);
}
function fmtChance(p) {
  if (p === null || p === undefined) return '–';
  if (p > 0.999) return '> 99.9 %';
  if (p < 0.001) return '< 0.1 %';
  return (100 * p).toFixed(1) + ' %';
}
function fmtCount(n) { return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'); }
// A block {value, low, high} as "3.00 % (2.77–3.25)".
function fmtBlock(metric, b) {
  if (!b) return '–';
  const num = (x) => (metric === 'cost_per_result' ? x.toFixed(2) : (100 * x).toFixed(b.value < 0.1 ? 2 : 1));
  return fmtMetric(metric, b.value) + ' (' + num(b.low) + '–' + num(b.high) + ')';
}
// Values best first: rates high first, cost per result low first; values without the figure last.
function perfRanked(values, metric) {
  const sign = metric === 'cost_per_result' ? 1 : -1;
  return values.slice().sort((a, b) => {
    const x = a[metric], y = b[metric];
    if (!x || !y) return (x ? -1 : 0) + (y ? 1 : 0);
    return sign * (x.value - y.value) || (b.p_best || 0) - (a.p_best || 0);
  });
}
// The reviewers' stars per value of dimension `name` (one per reviewer and card, as the tally).
function perfStars(name) {
  const d = dimIndex[name], out = new Map();
  if (d === undefined) return out;
  for (const j of starred()) {
    const v = dimValue(j, d);
    out.set(v, (out.get(v) || 0) + votesOf(j).length);
  }
  return out;
}
// "reviewers preferred 16:9, the audience 9:16" (or that they agree, or the audience's "not yet").
function perfTaste(dim, stars) {
  let top = null, most = 0, tie = false;
  for (const [v, n] of stars) { if (n > most) { top = v; most = n; tie = false; } else if (n === most && n) tie = true; }
  if (!top || tie) return null;
  const verdict = dim.verdict || {};
  const said = (text) => h('p', { class: 'perf-taste', 'data-agree': text[0] }, text[1]);
  if (verdict.state === 'winner' && verdict.leader === top) {
    return said(['yes', ['Reviewers and the audience agree: ', h('bdi', { text: top }), '.']]);
  }
  if (verdict.state === 'winner') {
    return said(['no', ['Reviewers preferred ', h('bdi', { text: top }), ' (★ ' + most + '), the audience ', h('bdi', { text: String(verdict.leader) }), '.']]);
  }
  return said(['open', ['Reviewers preferred ', h('bdi', { text: top }), ' (★ ' + most + '); the audience has not decided yet.']]);
}
// A horizontal bar (the value) with its interval's whisker, scaled to the largest high end.
function perfBar(block, scale) {
  const bar = h('span', { class: 'perf-bar', 'aria-hidden': 'true' });
  if (!block || !(scale > 0)) return bar;
  const at = (x) => Math.max(0, Math.min(100, (100 * x) / scale)).toFixed(2) + '%';
  const fillEl = h('span', { class: 'perf-fill' });
  fillEl.style.width = at(block.value);
  const whisker = h('span', { class: 'perf-whisker' });
  whisker.style.left = at(block.low);
  whisker.style.width = ((100 * (block.high - block.low)) / scale).toFixed(2) + '%';
  bar.append(fillEl, whisker);
  return bar;
}

function renderPerformance() {
  const metric = PF.metric;
  const label = PERF_METRICS[metric];
  const pick = h('select', { class: 'perf-metric', 'aria-label': 'Rank by' },
    perfMetrics().map((m) => h('option', { value: m, text: PERF_METRICS[m] })));
  pick.value = metric;
  pick.addEventListener('change', () => { PF.metric = pick.value; render(); });
  const head = h('div', { class: 'perf-head' }, h('h3', { text: 'Performance: the audience\'s verdict' }),
    h('span', { class: 'grow-space' }), h('label', { class: 'muted' }, 'rank by ', pick));
  const notice = PERF.randomised
    ? h('p', { class: 'perf-notice', 'data-randomised': 'yes', text: 'Every import comes from a platform\'s own split test: ' +
      'the platform randomised who saw which ad, so a difference here is the ads\' own.' })
    : h('p', { class: 'perf-notice', 'data-randomised': 'no', text: 'Platform delivery is not randomised: a platform shows each ad ' +
      'to the people it expects to respond, so part of a difference can come from who saw the ad rather than from the ad. ' +
      'Only the platform\'s own split test (A/B test) randomises; an import from one can be marked as such.' });
  const dims = perfDimensions().map((dim) => {
    const stars = perfStars(dim.name);
    const values = perfRanked(dim.values || [], metric);
    const scale = Math.max(0, ...values.map((v) => (v[metric] ? v[metric].high : 0)));
    const verdict = dim.verdict || { state: 'no_data', text: '' };
    const rows = values.map((v, i) => h('tr', { 'data-value': v.value, class: i === 0 && verdict.state === 'winner' ? 'lead' : '' },
      h('td', { class: 'v' }, h('bdi', { text: clip(v.value, 60) })),
      h('td', { class: 'bar-cell' }, perfBar(v[metric], scale)),
      h('td', { class: 'num', 'data-col': 'metric', title: label + ' (95 % interval)', text: fmtBlock(metric, v[metric]) }),
      h('td', { class: 'num', text: fmtCount(v.impressions) }),
      h('td', { class: 'num', 'data-col': 'p-best', text: fmtChance(v.p_best) }),
      h('td', { class: 'num', 'data-col': 'stars', title: 'reviewers\' stars on cards with this value', text: '★ ' + (stars.get(v.value) || 0) })));
    return h('section', { class: 'perf-dim', 'data-dim': dim.name },
      h('h4', null, h('bdi', { text: dim.name })),
      h('p', { class: 'verdict', 'data-state': verdict.state, text: verdict.text || '' }),
      perfTaste(dim, stars),
      h('table', null, h('thead', null, h('tr', null, h('th', { text: 'value' }), h('th', { class: 'bar-cell', text: '' }),
        h('th', { class: 'num', text: label + ' (95 % interval)' }), h('th', { class: 'num', text: 'impressions' }),
        h('th', { class: 'num', text: 'P(best)', title: 'the chance this value is the best of them (Beta-Binomial)' }),
        h('th', { class: 'num', text: 'stars' }))), h('tbody', null, rows)));
  });
  const dimNames = DIMS.map((d) => d.name).filter((n) => n !== 'name' && DIMS[dimIndex[n]].values.length > 1);
  const variants = perfRanked(PERF.variants || [], metric).map((v) => h('tr', { 'data-key': v.job_key, tabindex: '0', title: 'Show this video\'s card' },
    h('td', { class: 'v' }, h('bdi', { text: clip(v.name || v.variant_key, 60) }), v.tier ? h('span', { class: 'muted', text: ' · ' + v.tier }) : null),
    h('td', { class: 'dims' }, h('bdi', { text: dimNames.map((n) => (v.dims && v.dims[n] !== undefined ? v.dims[n] : '')).join(' · ') })),
    h('td', { class: 'num', text: fmtCount(v.impressions) }),
    h('td', { class: 'num', 'data-col': 'ctr' }, fmtBlock('ctr', v.ctr)),
    h('td', { class: 'num', 'data-col': 'completion' }, fmtBlock('completion', v.completion)),
    h('td', { class: 'num', 'data-col': 'cost' }, fmtBlock('cost_per_result', v.cost_per_result))));
  const imports = (PERF.imports || []).map((x) => {
    const at = new Date(+x.imported_at * 1000);
    return h('li', null, h('bdi', { class: 'file', text: x.file }), ' · ' + x.platform + ' · ' +
      (isNaN(at) ? '' : at.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' })) + ' · ' +
      fmtCount(x.matched) + ' of ' + fmtCount(x.rows) + ' rows matched · ',
    h('span', { class: x.split_test ? 'split yes' : 'split no', text: x.split_test ? 'split test' : 'not a split test' }));
  });
  grid.append(h('div', { class: 'perf' }, head, notice,
    h('p', { class: 'muted small', text: 'Figures of every video of the run with imported results (the filters do not apply). ' +
      'A value is called ahead only when it is at least 95 % likely the best; otherwise "not yet".' }),
    dims.length ? dims : h('p', { class: 'muted', text: 'No dimension with two values or more has figures.' }),
    h('section', { class: 'perf-variants' }, h('h4', { text: 'Per video' }),
      h('table', null, h('thead', null, h('tr', null, h('th', { text: 'name' }), h('th', { text: dimNames.join(' · ') }),
        h('th', { class: 'num', text: 'impressions' }), h('th', { class: 'num', text: 'CTR' }), h('th', { class: 'num', text: 'completion' }),
        h('th', { class: 'num', text: 'cost per result' }))), h('tbody', null, variants))),
    h('section', { class: 'perf-imports' }, h('h4', { text: 'Imports' }), h('ul', null, imports))));
}
// A video's row leads to its card in the grid (filters cleared when they hide it).
function perfShowCard(key) {
  const j = byKey.get(key);
  if (!j) { toast('This video is not in the run any more'); return; }
  const u = j.unit;
  u.cur = Math.max(0, u.jobs.indexOf(j));
  S.view = 'grid';
  if (!compute().vis.includes(u)) { S.filters.clear(); S.status = 'all'; S.picks = 'all'; S.q = ''; $('search').value = ''; $('status-sel').value = 'all'; $('picks-sel').value = 'all'; }
  render();
  focusUnit(u);
}

(function setUpPerformance() {
  const button = document.querySelector('.seg button[data-view="performance"]');
  if (!PERF) { if (button) button.hidden = true; return; } // an unregistered view falls back to the grid
  grid.addEventListener('click', (e) => {
    if (S.view !== 'performance') return;
    const tr = e.target.closest('.perf-variants tr[data-key]');
    if (tr) perfShowCard(tr.dataset.key);
  });
  grid.addEventListener('keydown', (e) => {
    if (S.view !== 'performance' || e.key !== 'Enter') return;
    const tr = e.target.closest('.perf-variants tr[data-key]');
    if (tr) { e.preventDefault(); perfShowCard(tr.dataset.key); }
  });
  Report.views.register('performance', {
    render: renderPerformance, ensure: () => null, all: () => {}, refresh: () => {}, axes: false,
  });
})();
