// ------------------------------------------------------------------ the reviewer

// The reviewer's name, asked once (askReviewer, 85-picks.js) and kept in this browser for
// every run, goes with each pick, reject and note and into winners.csv, so that several
// reviewers' files can be merged and their votes counted (docs/report-page.md).
const REVIEWER_KEY = 'runner-reviewer';
let reviewerName = '';
try { reviewerName = cleanName(localStorage.getItem(REVIEWER_KEY) || ''); } catch (e) { /* none yet */ }
function cleanName(name) { return String(name).replace(/\s+/g, ' ').trim().slice(0, 80); }
function reviewerId(name) { return cleanName(name).toLowerCase(); }
function setReviewer(name) {
  reviewerName = cleanName(name);
  try { localStorage.setItem(REVIEWER_KEY, reviewerName); } catch (e) { /* kept for this page */ }
  showReviewer();
}
Report.reviewer = () => reviewerName;
Report.needReviewer = (fn) => { if (reviewerName) fn(reviewerName); else askReviewer(fn); };

// ------------------------------------------------------------------ picks (localStorage)

const PICKS_KEY = 'runner-picks:' + RUN.id;
const IMPORTED_KEY = 'runner-imported:' + RUN.id;
const UI_KEY = 'runner-ui:' + RUN.id;
const picks = new Map(); // job key -> {s: 1 | -1 | 0, note: string, r: reviewer}: this browser's
// Other reviewers' picks from "Import picks", kept apart from this browser's own:
// reviewer id -> {name, picks: Map(job key -> note)} (every imported pick is a star).
const imported = new Map();
(function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(PICKS_KEY) || 'null');
    if (saved && saved.picks && typeof saved.picks === 'object') {
      for (const k of Object.keys(saved.picks)) {
        const p = saved.picks[k];
        if (!byKey.has(k) || !p || typeof p !== 'object') continue;
        picks.set(k, { s: p.s === 1 || p.s === -1 ? p.s : 0, note: typeof p.note === 'string' ? p.note : '',
          r: typeof p.r === 'string' ? p.r : '' });
      }
    }
  } catch (e) { /* unreadable storage: start empty */ }
  try {
    const saved = JSON.parse(localStorage.getItem(IMPORTED_KEY) || 'null');
    if (saved && Array.isArray(saved.reviewers)) {
      for (const r of saved.reviewers) {
        if (!r || typeof r.name !== 'string' || !r.picks || typeof r.picks !== 'object') continue;
        const m = new Map();
        for (const k of Object.keys(r.picks)) if (byKey.has(k)) m.set(k, String(r.picks[k] || ''));
        imported.set(reviewerId(r.name), { name: cleanName(r.name), picks: m });
      }
    }
  } catch (e) { /* unreadable storage: nothing imported */ }
})();
function savePicks() {
  const out = {};
  for (const [k, p] of picks) if (p.s || p.note) out[k] = p;
  const others = [];
  for (const r of imported.values()) {
    const ps = {};
    for (const [k, note] of r.picks) ps[k] = note;
    others.push({ name: r.name, picks: ps });
  }
  try {
    localStorage.setItem(PICKS_KEY, JSON.stringify({ v: 1, run: RUN.id, picks: out }));
    localStorage.setItem(IMPORTED_KEY, JSON.stringify({ v: 1, run: RUN.id, reviewers: others }));
  } catch (e) { toast('Picks could not be saved in this browser: ' + e.message); }
}
// This browser's own star (1), reject (-1) or neither (0), and its note.
function starOf(j) { const p = picks.get(j.key); return p ? p.s : 0; }
function noteOf(j) { const p = picks.get(j.key); return p ? p.note : ''; }
function ownName(p) { return (p && p.r) || reviewerName || 'this browser'; }
function setPick(j, s, note) {
  if (j.isParent) { toast('Star the ' + RUN.tier + ' render; the ' + j.tier + ' one belongs to run ' + RUN.parentRun); return; }
  if (!reviewerName) { Report.needReviewer(() => setPick(j, s, note)); return; }
  const p = picks.get(j.key) || { s: 0, note: '', r: '' };
  if (s !== undefined) p.s = s;
  if (note !== undefined) p.note = note;
  p.r = reviewerName;
  picks.set(j.key, p);
  savePicks();
  refreshPicks(j.unit);
  updatePickCounts();
  if (!$('picks').hidden) renderPicks();
}
// Everyone's stars: the names of the distinct reviewers who starred j (this browser's own
// reviewer and every imported one), and every reviewer known (the "of 4" in "3 of 4 starred").
function votesOf(j) {
  const ids = new Map();
  const p = picks.get(j.key);
  if (p && p.s === 1) ids.set(reviewerId(ownName(p)), ownName(p));
  for (const [id, r] of imported) if (r.picks.has(j.key) && !ids.has(id)) ids.set(id, r.name);
  return Array.from(ids.values());
}
function reviewersKnown() {
  const ids = new Set(imported.keys());
  if (reviewerName) ids.add(reviewerId(reviewerName));
  for (const p of picks.values()) if (p.s || p.note) ids.add(reviewerId(ownName(p)));
  return ids.size;
}
// Other reviewers' notes on j, with their names: imported ones, and those `runner promote`
// kept for a promoted run (DATA.winnerNotes, by the promoted job's key).
function othersNotes(j) {
  const out = [];
  const mine = picks.get(j.key);
  for (const [id, r] of imported) {
    const note = r.picks.get(j.key);
    if (!note) continue;
    if (mine && mine.note === note && reviewerId(ownName(mine)) === id) continue;
    out.push({ name: r.name, note: note });
  }
  const kept = DATA.winnerNotes && DATA.winnerNotes[j.key];
  if (Array.isArray(kept)) for (const n of kept) if (Array.isArray(n)) out.push({ name: String(n[0]), note: String(n[1]) });
  return out;
}
// Starred by anyone (this browser or an imported reviewer).
function starred() {
  return jobs.filter((j) => {
    if (starOf(j) === 1) return true;
    for (const r of imported.values()) if (r.picks.has(j.key)) return true;
    return false;
  });
}

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
