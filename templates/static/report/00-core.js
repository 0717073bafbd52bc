/* runner report: draws the grid from the JSON embedded in the page.
 *
 * The script is the files of this folder, concatenated in the order of their names inside one
 * strict function when the report is built (runner/review/report.py): they share its scope, so
 * a later file uses what an earlier one defines. `runner report RUN --templates DIR` replaces
 * one file by the file of the same name in DIR/static/report/ (docs/report-page.md).
 *
 * Inlined into index.html and admitted by its SHA-256 in the page's Content-Security-Policy.
 * Rules kept throughout: user text only ever goes through textContent / createTextNode (never
 * innerHTML), URLs only from the data's relative media paths (checked by safeUrl), no inline
 * handlers, no eval, no network. Picks live in localStorage under the run id.
 */

const $ = (id) => document.getElementById(id);
const DATA = JSON.parse($('report-data').textContent);
performance.mark('runner-data-parsed');
const RUN = DATA.run;
const DIMS = DATA.dims;
const STATES = DATA.states;
const FAILED = new Set(['failed', 'rejected', 'lost', 'result_error', 'expired']);
const PROMOTED = !!RUN.parentRun;
const MAX_COMPARE = 4;
const MAX_LIVE = 8;

// ------------------------------------------------------------------ the views' registry

// A view draws the current layout L (30-layout.js) into #grid. Each view file registers
// itself: Report.views.register(name, {render, ensure, all, refresh, axes}), where
//   render()        draws L into the emptied grid;
//   ensure(u)       puts unit u's element in the DOM and returns it (keys, viewer, picks list);
//   all()           puts every unit's element in the DOM (before printing);
//   refresh(el, u)  redraws unit u's element el in place;
//   axes            false when the view ignores the rows and columns axes (default true).
// The toolbar's <button data-view="name"> (in .seg) selects a view by its name.
const Report = {
  views: (function () {
    const specs = new Map();
    return {
      register(name, spec) { specs.set(name, Object.assign({ axes: true }, spec)); },
      get(name) { return specs.get(name); },
      has(name) { return specs.has(name); },
      names() { return Array.from(specs.keys()); },
    };
  })(),
  // Who is reviewing (20-store.js sets these): reviewer() is the name kept in this browser
  // ('' when none yet); needReviewer(fn) asks once when there is none, then calls fn(name).
  reviewer: () => '',
  needReviewer: (fn) => fn(''),
  // Files "Import picks" can read besides winners.csv (e.g. duels.csv, 77-duels.js): each
  // {accepts(head) -> bool, import(head, rows, fileName) -> message}; head is the lower-cased
  // header row, rows the data rows as arrays of cells (formula marks already removed).
  importers: [],
};
// The view in force (S.view, 20-store.js; checked against the registry by render()).
function view() { return Report.views.get(S.view); }

// ------------------------------------------------------------------ helpers

function h(tag, props) {
  const el = document.createElement(tag);
  if (props) {
    for (const k of Object.keys(props)) {
      const v = props[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (let i = 2; i < arguments.length; i++) add(el, arguments[i]);
  return el;
}
function fill(el) { el.replaceChildren(); for (let i = 1; i < arguments.length; i++) add(el, arguments[i]); return el; }
function add(el, kid) {
  if (kid === null || kid === undefined || kid === false) return;
  if (Array.isArray(kid)) { for (const k of kid) add(el, k); return; }
  el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
}
// Only our own media folder: relative, no scheme, no parent directory.
function safeUrl(u) {
  return typeof u === 'string' && /^media\/[A-Za-z0-9._/-]+$/.test(u) && u.indexOf('..') < 0 ? u : null;
}
function fmtCredits(v) {
  if (v === null || v === undefined) return '–';
  return Math.abs(v) < 1000 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
}
function fmtUsd(v) { return v === null || v === undefined ? '' : '$' + (v / RUN.creditsPerUsd).toFixed(2); }
function fmtDur(s) {
  if (s === null || s === undefined) return '–';
  if (s < 90) return s.toFixed(1) + ' s';
  const m = Math.floor(s / 60), r = Math.floor(s % 60);
  return m + 'm ' + String(r).padStart(2, '0') + 's';
}
function fmtClock(s) {
  if (!isFinite(s)) s = 0;
  const m = Math.floor(s / 60), r = s - m * 60;
  return m + ':' + (r < 10 ? '0' : '') + r.toFixed(1);
}
function stateOf(state) { return STATES[state] || [state, 'wait']; }
function clip(text, n) { text = String(text); return text.length > n ? text.slice(0, n - 1) + '…' : text; }
function debounce(fn, ms) { let t = 0; return function () { clearTimeout(t); t = setTimeout(fn, ms); }; }
let toastTimer = 0;
function toast(text) {
  const el = $('toast'); el.textContent = text; el.hidden = false;
  clearTimeout(toastTimer); toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
}
