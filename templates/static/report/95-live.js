// ------------------------------------------------------------------ live report

// While a run goes, runner rewrites this page every few seconds to minutes and marks it
// RUN.live = {every: seconds, written: ISO time} (runner/review/live.py). A page opened from
// the folder cannot fetch (no network, no server), so it reloads itself after `every` seconds, but only
// when the reviewer is idle (no dialog, full view, compare, text field or playing video),
// and keeps the view: filters, status, picks filter, search, sort, view, axes, size, the
// duel view's "duel on", the compare tray, the card in focus and the scroll position go to
// sessionStorage just before the reload and come back before the first render (this file
// runs before 99-start.js).
// Picks and notes are in localStorage already. The final page has no marker: the reloading
// stops, and the state saved by the last reload is still restored (docs/report-page.md).

const LIVE_KEY = 'runner-live:' + RUN.id;

function liveState() {
  const filters = {};
  for (const [d, v] of S.filters) filters[DIMS[d].name] = DIMS[d].values[v];
  const variant = (id) => units[id] && units[id].jobs[0].variant;
  const samples = {};
  for (const u of units) if (u.cur) samples[u.jobs[0].variant] = u.cur;
  return {
    v: 1, rows: S.rows < 0 ? '' : DIMS[S.rows].name, cols: S.cols < 0 ? '' : DIMS[S.cols].name,
    filters: filters, status: S.status, picks: S.picks, q: S.q, sort: S.sort, view: S.view,
    size: S.size, prompts: S.prompts, loop: S.loop, compare: S.compare.map(variant).filter(Boolean),
    focus: S.focus >= 0 ? variant(S.focus) : null, samples: samples, duelOn: D.only, perfMetric: PF.metric,
    x: window.scrollX, y: window.scrollY,
  };
}

function restoreLiveState() {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(LIVE_KEY) || 'null');
    sessionStorage.removeItem(LIVE_KEY);
  } catch (e) { return null; }
  if (!saved || saved.v !== 1) return null;
  const dim = (name) => (name === '' ? -1 : dimIndex[name] !== undefined ? dimIndex[name] : null);
  const rows = dim(saved.rows), cols = dim(saved.cols);
  if (rows !== null) S.rows = rows;
  if (cols !== null) S.cols = cols;
  if (S.rows === S.cols) S.cols = -1;
  S.filters = new Map();
  for (const name of Object.keys(saved.filters || {})) {
    const d = dimIndex[name];
    const v = d === undefined ? -1 : DIMS[d].values.indexOf(saved.filters[name]);
    if (v >= 0) S.filters.set(d, v);
  }
  const select = (id, value) => {
    const sel = $(id);
    if (typeof value === 'string' && Array.from(sel.options).some((o) => o.value === value)) return value;
    return null;
  };
  const status = select('status-sel', saved.status);
  if (status !== null) S.status = status;
  const picked = select('picks-sel', saved.picks);
  if (picked !== null) S.picks = picked;
  if (typeof saved.q === 'string') { S.q = saved.q; $('search').value = saved.q; }
  if (typeof saved.sort === 'string') S.sort = saved.sort;
  if (typeof saved.view === 'string') S.view = saved.view;
  if (typeof saved.size === 'number' && saved.size >= 140 && saved.size <= 460) S.size = saved.size;
  if (typeof saved.prompts === 'boolean') S.prompts = saved.prompts;
  if (typeof saved.loop === 'boolean') { S.loop = saved.loop; $('loop-chk').checked = S.loop; }
  const unitOf = (variant) => { const u = byVariant.get(variant); return u ? u.id : -1; };
  S.compare = (Array.isArray(saved.compare) ? saved.compare : []).map(unitOf).filter((id) => id >= 0).slice(0, MAX_COMPARE);
  if (S.compare.length) renderTray();
  if (typeof saved.duelOn === 'string' && duelDims().some((d) => DIMS[d].name === saved.duelOn)) D.only = saved.duelOn;
  if (PERF && typeof saved.perfMetric === 'string' && perfMetrics().indexOf(saved.perfMetric) >= 0) PF.metric = saved.perfMetric;
  if (typeof saved.focus === 'string' && unitOf(saved.focus) >= 0) S.focus = unitOf(saved.focus);
  for (const variant of Object.keys(saved.samples || {})) {
    const u = byVariant.get(variant), cur = saved.samples[variant];
    if (u && Number.isInteger(cur) && cur > 0 && cur < u.jobs.length) u.cur = cur;
  }
  return { x: +saved.x || 0, y: +saved.y || 0 };
}

// The reviewer is busy: a dialog, the full view, compare, the picks panel, a text field, or a
// video playing in the full view or compare. A reload waits until none of these holds.
function reviewerBusy() {
  for (const id of ['viewer', 'compare', 'note', 'help', 'picks']) {
    const el = $(id);
    if (el && !el.hidden) return true;
  }
  if (document.querySelector('dialog[open], .overlay:not([hidden])')) return true;
  const a = document.activeElement;
  if (a && (a.tagName === 'TEXTAREA' || a.isContentEditable ||
    (a.tagName === 'INPUT' && /^(text|search|number|email|url|)$/.test(a.type || '')))) return true;
  for (const v of document.querySelectorAll('#view-stage video, #cmp-stage video, .duel-stage video')) if (!v.paused) return true;
  return document.fullscreenElement !== null && document.fullscreenElement !== undefined;
}

function liveBadge(live) {
  const row = document.querySelector('#top .title-row');
  if (!row) return;
  const settled = jobs.filter((j) => stateOf(j.state)[1] !== 'wait').length;
  const written = new Date(live.written);
  const time = isNaN(written) ? '' : ' · updated ' + written.toLocaleTimeString('en-GB', { hour12: false });
  const badge = h('span', {
    class: 'badge live', id: 'live-badge', role: 'status',
    title: 'The run is still going: this page reloads itself about every ' + Math.round(live.every) +
      ' s while you are not busy, keeping your picks, filters and scroll position',
  }, 'live' + time + ' · ' + settled.toLocaleString('en-US') + ' of ' + jobs.length.toLocaleString('en-US') + ' done');
  const space = row.querySelector('.grow-space');
  row.insertBefore(badge, space);
}

(function live() {
  const at = restoreLiveState();
  if (at && (at.x || at.y)) {
    // after the first render (99-start.js), as soon as the page is tall enough: lazy rows
    // and chunks fill in as it scrolls, so try for a moment
    if ('scrollRestoration' in history) history.scrollRestoration = 'manual';
    let tries = 0;
    const scroll = () => {
      window.scrollTo(at.x, at.y);
      if ((Math.abs(window.scrollY - at.y) > 2 || Math.abs(window.scrollX - at.x) > 2) && ++tries < 60) requestAnimationFrame(scroll);
    };
    requestAnimationFrame(scroll);
  }
  const marker = RUN.live;
  if (!marker || typeof marker !== 'object') return;
  if ('scrollRestoration' in history) history.scrollRestoration = 'manual';
  document.documentElement.dataset.live = '1';
  liveBadge(marker);
  const every = Math.max(1, +marker.every || 30) * 1000;
  const reload = () => {
    if (reviewerBusy()) { setTimeout(reload, 2000); return; }
    try { sessionStorage.setItem(LIVE_KEY, JSON.stringify(liveState())); } catch (e) { /* reload all the same */ }
    location.reload();
  };
  setTimeout(reload, every);
})();
