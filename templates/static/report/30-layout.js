// ------------------------------------------------------------------ filtering and layout

let L = null; // the current layout

function terms() { return S.q.toLowerCase().split(/\s+/).filter(Boolean); }
function jobMatches(j, words) {
  const tone = stateOf(j.state)[1];
  switch (S.status) {
    case 'done': if (j.state !== 'done') return false; break;
    case 'failed': if (!FAILED.has(j.state)) return false; break;
    case 'held': if (j.state !== 'unknown') return false; break;
    case 'wait': if (tone !== 'wait') return false; break;
    case 'mismatch': if (!j.mismatches) return false; break;
    default: break;
  }
  const s = starOf(j);
  if ((S.picks === 'star' && s !== 1) || (S.picks === 'reject' && s !== -1) || (S.picks === 'open' && s !== 0)) return false;
  if (S.picks === 'compare' && S.compare.indexOf(j.unit.id) < 0) return false;
  if ((S.picks === 'voted' || S.picks === 'voted2') && votesOf(j).length < (S.picks === 'voted' ? 1 : 2)) return false;
  if (words.length) {
    const text = searchText(j);
    for (const w of words) if (text.indexOf(w) < 0) return false;
  }
  return true;
}
const RANK = { bad: 0, warn: 1, wait: 2, ok: 3 };
function sortUnits(list) {
  const cur = (u) => u.jobs[u.cur];
  const num = (v, dir) => (v === null || v === undefined ? Infinity : dir * v);
  const by = {
    ledger: (a, b) => a.first - b.first,
    star: (a, b) => starOf(cur(b)) - starOf(cur(a)) || a.first - b.first,
    'cost-': (a, b) => num(cost(cur(a)), -1) - num(cost(cur(b)), -1) || a.first - b.first,
    'cost+': (a, b) => num(cost(cur(a)), 1) - num(cost(cur(b)), 1) || a.first - b.first,
    'lat+': (a, b) => num(cur(a).latency, 1) - num(cur(b).latency, 1) || a.first - b.first,
    'lat-': (a, b) => num(cur(a).latency, -1) - num(cur(b).latency, -1) || a.first - b.first,
    name: (a, b) => cur(a).name.localeCompare(cur(b).name) || a.first - b.first,
    state: (a, b) => RANK[stateOf(cur(a).state)[1]] - RANK[stateOf(cur(b).state)[1]] || a.first - b.first,
  };
  list.sort(by[S.sort] || by.ledger);
}
function cost(j) { return j.credits !== null && j.credits !== undefined ? j.credits : j.estimate; }

function compute() {
  const words = terms();
  const vis = [];
  for (const u of units) {
    let ok = true;
    for (const [d, v] of S.filters) if (u.dims[d] !== v) { ok = false; break; }
    if (!ok) continue;
    let first = -1, curOk = false;
    for (let k = 0; k < u.jobs.length; k++) {
      if (jobMatches(u.jobs[k], words)) { if (first < 0) first = k; if (k === u.cur) curOk = true; }
    }
    if (first < 0) continue;
    if (!curOk) u.cur = first;
    vis.push(u);
  }
  sortUnits(vis);
  const axes = view().axes;
  const r = axes ? S.rows : -1, c = axes ? S.cols : -1;
  const present = (d) => {
    if (d < 0) return [0];
    const seen = new Uint8Array(DIMS[d].values.length);
    for (const u of vis) if (u.dims[d] >= 0) seen[u.dims[d]] = 1;
    const out = [];
    for (let i = 0; i < seen.length; i++) if (seen[i]) out.push(i);
    return out;
  };
  const rowVals = present(r), colVals = present(c);
  const rowPos = new Map(rowVals.map((v, i) => [v, i])), colPos = new Map(colVals.map((v, i) => [v, i]));
  const cells = rowVals.map(() => colVals.map(() => []));
  for (const u of vis) {
    const ri = r < 0 ? 0 : rowPos.get(u.dims[r]), ci = c < 0 ? 0 : colPos.get(u.dims[c]);
    if (ri === undefined || ci === undefined) continue;
    cells[ri][ci].push(u);
  }
  const order = [];
  for (const row of cells) for (const cell of row) for (const u of cell) order.push(u);
  return { vis: vis, r: r, c: c, rowVals: rowVals, colVals: colVals, cells: cells, order: order,
    rows: [], common: new Map(), chipDims: new Map() };
}

// Words shared by most prompts of a grid row (more than half of its distinct prompts);
// the others are what sets a card apart, and are highlighted.
const WORD = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;
function wordSet(text) { return new Set(text.toLowerCase().match(WORD) || []); }
function usualWords(list) {
  const seen = new Set();
  const counts = new Map();
  for (const j of list) {
    if (seen.has(j.prompt)) continue;
    seen.add(j.prompt);
    for (const w of wordSet(j.prompt)) counts.set(w, (counts.get(w) || 0) + 1);
  }
  if (seen.size < 2) return null; // one distinct prompt: nothing differs
  const usual = new Set();
  for (const [w, n] of counts) if (n * 2 > seen.size) usual.add(w);
  return usual;
}
// Words in every prompt of the list (compare: what differs from all the others).
function commonWords(list) {
  let common = null;
  const seen = new Set();
  for (const j of list) {
    if (seen.has(j.prompt)) continue;
    seen.add(j.prompt);
    const words = wordSet(j.prompt);
    if (common === null) { common = words; continue; }
    for (const w of common) if (!words.has(w)) common.delete(w);
  }
  return seen.size > 1 ? common : null; // one distinct prompt: nothing differs
}
function rowCommon(ri) {
  if (!L.common.has(ri)) {
    const list = [];
    for (const cell of L.cells[ri]) for (const u of cell) list.push(u.jobs[u.cur]);
    L.common.set(ri, usualWords(list));
  }
  return L.common.get(ri);
}
function promptEl(text, common, cls) {
  const p = h('p', { class: cls || 'prompt', title: null });
  if (!common) { p.textContent = text; return p; }
  let last = 0;
  WORD.lastIndex = 0;
  let m;
  while ((m = WORD.exec(text)) !== null) {
    if (common.has(m[0].toLowerCase())) continue;
    if (m.index > last) p.append(document.createTextNode(text.slice(last, m.index)));
    p.append(h('mark', { text: m[0] }));
    last = m.index + m[0].length;
  }
  if (last < text.length) p.append(document.createTextNode(text.slice(last)));
  return p;
}
// Dimensions worth a label on a card: not an axis, and varying inside its cell.
function chipDims(ri, ci) {
  const key = ri + ':' + ci;
  if (!L.chipDims.has(key)) {
    const cell = L.cells[ri][ci];
    const out = [];
    DIMS.forEach((d, i) => {
      if (i === L.r || i === L.c || cell.length < 2) return;
      const v0 = cell[0].dims[i];
      for (const u of cell) if (u.dims[i] !== v0) { out.push(i); return; }
    });
    L.chipDims.set(key, out);
  }
  return L.chipDims.get(key);
}
function chip(d, v, diff) {
  const value = v >= 0 ? DIMS[d].values[v] : '';
  return h('span', { class: 'chip h' + (Math.max(v, 0) % 8) + (diff ? ' diff' : ''), title: DIMS[d].name + ': ' + clip(value, 300) },
    h('i', { text: DIMS[d].name }), h('bdi', { text: clip(value, 80) }));
}
