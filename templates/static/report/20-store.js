// ------------------------------------------------------------------ picks (localStorage)

const PICKS_KEY = 'runner-picks:' + RUN.id;
const UI_KEY = 'runner-ui:' + RUN.id;
const picks = new Map(); // job key -> {s: 1 | -1 | 0, note: string}
(function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(PICKS_KEY) || 'null');
    if (saved && saved.picks && typeof saved.picks === 'object') {
      for (const k of Object.keys(saved.picks)) {
        const p = saved.picks[k];
        if (!byKey.has(k) || !p || typeof p !== 'object') continue;
        picks.set(k, { s: p.s === 1 || p.s === -1 ? p.s : 0, note: typeof p.note === 'string' ? p.note : '' });
      }
    }
  } catch (e) { /* unreadable storage: start empty */ }
})();
function savePicks() {
  const out = {};
  for (const [k, p] of picks) if (p.s || p.note) out[k] = p;
  try { localStorage.setItem(PICKS_KEY, JSON.stringify({ v: 1, run: RUN.id, picks: out })); }
  catch (e) { toast('Picks could not be saved in this browser: ' + e.message); }
}
function starOf(j) { const p = picks.get(j.key); return p ? p.s : 0; }
function noteOf(j) { const p = picks.get(j.key); return p ? p.note : ''; }
function setPick(j, s, note) {
  if (j.isParent) { toast('Star the ' + RUN.tier + ' render; the ' + j.tier + ' one belongs to run ' + RUN.parentRun); return; }
  const p = picks.get(j.key) || { s: 0, note: '' };
  if (s !== undefined) p.s = s;
  if (note !== undefined) p.note = note;
  picks.set(j.key, p);
  savePicks();
  refreshPicks(j.unit);
  updatePickCounts();
  if (!$('picks').hidden) renderPicks();
}
function starred() { return jobs.filter((j) => starOf(j) === 1); }

// ------------------------------------------------------------------ view state

function defaultAxes() {
  const idx = DIMS.map((d, i) => i);
  let rows = dimIndex.name !== undefined ? dimIndex.name : -1;
  if (rows < 0 && idx.length > 1) rows = idx.slice().sort((a, b) => DIMS[b].values.length - DIMS[a].values.length)[0];
  const rest = idx.filter((i) => i !== rows).sort((a, b) => DIMS[a].values.length - DIMS[b].values.length);
  let cols = rest.length ? rest[0] : -1;
  // aspect ratio as columns when it varies: each column then has boxes of its own shape
  const ar = dimIndex.aspect_ratio;
  if (ar !== undefined && ar !== rows && DIMS[ar].values.length <= 6) cols = ar;
  if (rows < 0 && cols >= 0 && DIMS[cols].values.length > 8) { rows = cols; cols = -1; }
  return [rows, cols];
}
const S = {
  rows: -1, cols: -1, filters: new Map(), status: 'all', picks: 'all', q: '', sort: 'ledger',
  view: 'grid', size: PROMOTED ? 340 : 230, prompts: true, loop: true, muted: true, compare: [], focus: -1,
};
(function restore() {
  const axes = defaultAxes(); S.rows = axes[0]; S.cols = axes[1];
  try {
    const ui = JSON.parse(localStorage.getItem(UI_KEY) || 'null');
    if (!ui) return;
    if (ui.rows === '' || dimIndex[ui.rows] !== undefined) S.rows = ui.rows === '' ? -1 : dimIndex[ui.rows];
    if (ui.cols === '' || dimIndex[ui.cols] !== undefined) S.cols = ui.cols === '' ? -1 : dimIndex[ui.cols];
    if (S.rows === S.cols) S.cols = -1;
    if (typeof ui.view === 'string') S.view = ui.view; // a registered view: render() checks
    if (typeof ui.size === 'number' && ui.size >= 140 && ui.size <= 460) S.size = ui.size;
    if (typeof ui.prompts === 'boolean') S.prompts = ui.prompts;
    if (typeof ui.sort === 'string') S.sort = ui.sort;
  } catch (e) { /* defaults */ }
})();
function saveUi() {
  try {
    localStorage.setItem(UI_KEY, JSON.stringify({
      rows: S.rows < 0 ? '' : DIMS[S.rows].name, cols: S.cols < 0 ? '' : DIMS[S.cols].name,
      view: S.view, size: S.size, prompts: S.prompts, sort: S.sort,
    }));
  } catch (e) { /* not essential */ }
}
