// ------------------------------------------------------------------ grid rendering

const grid = $('grid');
let rowObserver = null, moreObserver = null;

function render() {
  if (!Report.views.has(S.view)) S.view = 'grid';
  stopAllVideos();
  const hadFocus = !!(document.activeElement && document.activeElement.closest && document.activeElement.closest('#grid .card, #grid tr'));
  if (rowObserver) rowObserver.disconnect();
  if (moreObserver) moreObserver.disconnect();
  for (const u of units) u.el = null;
  L = compute();
  grid.className = 'view-' + S.view + (S.prompts ? '' : ' hide-prompts') + (L.r < 0 ? ' no-rows' : '');
  document.body.dataset.view = S.view; // styles outside the grid, e.g. no compare tray over a duel
  grid.style.setProperty('--card', S.size + 'px');
  grid.replaceChildren();
  if (!L.vis.length) {
    grid.append(h('p', { class: 'muted empty-note', text: units.length ? 'No card matches these filters.' : 'This run has no jobs.' }));
  } else view().render();
  renderControls();
  saveUi();
  if (hadFocus && S.focus >= 0 && L.vis.indexOf(units[S.focus]) >= 0) {
    const el = ensureRendered(units[S.focus]);
    if (el) el.focus({ preventScroll: true });
  }
}

// Cards a cell shows before its "Show N more" (the rest come in as the cell scrolls in).
const CELL_LIMIT = 12;
const SHAPE_AR = { 'ar-port': 9 / 16, 'ar-land': 16 / 9, 'ar-square': 1, 'ar-mixed': 1 };

function renderGrid() {
  const gap = S.view === 'sheet' ? 6 : 10;
  const nc = L.colVals.length;
  L.cellAr = {};
  const maxCount = new Array(nc).fill(1);
  L.cells.forEach((row, ri) => row.forEach((cell, ci) => {
    L.cellAr[ri + ':' + ci] = SHAPE_AR[shapeOf(cell)] || WIDE;
    if (cell.length > maxCount[ci]) maxCount[ci] = cell.length;
  }));
  const rh = L.r < 0 ? 0 : (S.view === 'sheet' ? 110 : 150);
  const avail = Math.max(cardSize(WIDE), document.documentElement.clientWidth - 36 - (rh ? rh + gap : 0) - (nc - 1) * gap);
  // Cards side by side per column: each column as wide as its widest line of k cards (each card
  // as wide as its video), k chosen column by column to make the rows as short as they can be
  // in the window: one more card per line goes to the column whose cells are tallest, while it
  // fits. The cards may be up to 15 % smaller than asked when that makes the rows shorter.
  const footH = S.view === 'sheet' ? 44 : 112;
  const lineWidth = (ci, k, sc) => {
    let out = 0;
    L.cells.forEach((row, ri) => {
      const cell = row[ci];
      let w = 0;
      for (let i = 0; i < Math.min(k, cell.length); i++) w += cardWidth(cell[i], L.cellAr[ri + ':' + ci], sc);
      out = Math.max(out, w + (Math.min(k, cell.length) - 1) * gap);
    });
    return out || cardSize(WIDE);
  };
  const tallest = L.colVals.map((_, ci) => {
    let hmax = 0;
    L.cells.forEach((row, ri) => { for (const u of row[ci].slice(0, CELL_LIMIT)) hmax = Math.max(hmax, cardSize(cardAspect(u, L.cellAr[ri + ':' + ci])) / cardAspect(u, L.cellAr[ri + ':' + ci])); });
    return hmax;
  });
  const lay = (sc) => {
    const n = maxCount.map((m) => Math.min(m, CELL_LIMIT));
    const k = n.map(() => 1);
    const colH = (ci) => Math.ceil(n[ci] / k[ci]) * (tallest[ci] * sc + footH);
    let ws = k.map((_, ci) => lineWidth(ci, 1, sc));
    for (;;) {
      let best = -1;
      for (let ci = 0; ci < nc; ci++) if (k[ci] < n[ci] && (best < 0 || colH(ci) > colH(best))) best = ci;
      if (best < 0) break;
      const w = lineWidth(best, k[best] + 1, sc);
      if (ws.reduce((t, x) => t + x, 0) - ws[best] + w > avail) break;
      k[best]++; ws[best] = w;
    }
    return { k: k, ws: ws, sc: sc, height: Math.max.apply(null, k.map((_, ci) => colH(ci))) };
  };
  let best = lay(1);
  const small = lay(0.85);
  if (small.height < best.height * 0.97) best = small;
  const per = best.k, scale = best.sc;
  L.scale = scale;
  grid.style.setProperty('--card', cardSize(WIDE) + 'px');
  const tracks = best.ws;
  grid.style.setProperty('--tpl', (rh ? rh + 'px ' : '') + tracks.map((w) => w + 'px').join(' '));
  if (L.c >= 0) {
    const head = h('div', { class: 'ghead' });
    if (rh) head.append(h('div', { class: 'corner', title: DIMS[L.r].name + ' × ' + DIMS[L.c].name, text: DIMS[L.r].name + ' ↓  ' + DIMS[L.c].name + ' →' }));
    L.colVals.forEach((v, ci) => {
      let n = 0; for (const row of L.cells) n += row[ci].length;
      const value = DIMS[L.c].values[v];
      head.append(h('div', { class: 'chead', title: DIMS[L.c].name + ': ' + clip(value, 400) }, h('bdi', { text: clip(value, 120) }), h('small', { text: String(n) })));
    });
    grid.append(head);
  }
  rowObserver = new IntersectionObserver(onRows, { rootMargin: '900px 0px' });
  moreObserver = new IntersectionObserver(onMore, { rootMargin: '700px 0px' });
  let budget = window.innerHeight + 900;
  L.cells.forEach((row, ri) => {
    const sec = h('section', { class: 'grow', 'data-r': ri });
    if (rh) {
      const v = L.rowVals[ri];
      let n = 0; for (const cell of row) n += cell.length;
      sec.append(h('div', { class: 'rhead', title: DIMS[L.r].name + ': ' + clip(DIMS[L.r].values[v], 400) },
        h('bdi', { text: clip(DIMS[L.r].values[v], 200) }), h('small', { text: String(n) })));
    }
    const state = { el: sec, done: false, cells: [] };
    let est = 0;
    row.forEach((cell, ci) => {
      const label = L.c >= 0 ? DIMS[L.c].values[L.colVals[ci]] : '';
      const el = h('div', { class: 'gcell ' + shapeOf(cell) + (cell.length ? '' : ' empty'), 'data-c': ci, 'data-label': clip(label, 120) || null });
      sec.append(el);
      const n = Math.max(CELL_LIMIT, per[ci] * 3);
      state.cells.push({ el: el, units: cell, shown: 0, per: n, ri: ri, ci: ci, more: null });
      // the cell's height: its lines of cards, each as tall as its tallest picture
      let hgt = 0, line = 0, lineH = 0;
      for (let i = 0; i < Math.min(cell.length, n); i++) {
        const ar = cardAspect(cell[i], L.cellAr[ri + ':' + ci]);
        const wd = cardWidth(cell[i], L.cellAr[ri + ':' + ci], scale);
        if (line && line + wd > tracks[ci] + 1) { hgt += lineH + gap; line = 0; lineH = 0; }
        line += wd + gap;
        lineH = Math.max(lineH, (cell[i].jobs[cell[i].cur].parent ? (wd - 2) / 2 : wd) / ar + footH);
      }
      est = Math.max(est, hgt + lineH);
    });
    est = Math.round(est + 16);
    sec.style.containIntrinsicSize = 'auto ' + est + 'px';
    L.rows.push(state);
    grid.append(sec);
    if (budget > 0) { renderRow(ri); budget -= est; } else { sec.style.minHeight = est + 'px'; rowObserver.observe(sec); }
  });
}
// The media box of a cell takes the shape most of its videos have.
function shapeOf(cell) {
  let port = 0, land = 0, square = 0;
  for (const u of cell) {
    const m = u.jobs[u.cur].media;
    if (!m || !m.width || !m.height) continue;
    if (m.height > m.width * 1.1) port++; else if (m.width > m.height * 1.1) land++; else square++;
  }
  const n = port + land + square;
  if (!n) return '';
  if (port > 0.6 * n) return 'ar-port';
  if (land > 0.6 * n) return 'ar-land';
  if (square > 0.6 * n) return 'ar-square';
  return 'ar-mixed';
}
function renderRow(ri) {
  const state = L.rows[ri];
  if (!state || state.done) return;
  state.done = true;
  state.el.style.minHeight = '';
  state.el.classList.add('drawn');
  for (const cell of state.cells) appendChunk(cell);
}
function appendChunk(cell) {
  const end = Math.min(cell.units.length, cell.shown + cell.per);
  const frag = document.createDocumentFragment();
  for (let i = cell.shown; i < end; i++) frag.append(cardEl(cell.units[i], cell.ri, cell.ci));
  cell.shown = end;
  if (cell.more) { moreObserver.unobserve(cell.more); cell.more.remove(); cell.more = null; }
  cell.el.append(frag);
  const left = cell.units.length - cell.shown;
  if (left > 0) {
    const btn = h('button', { type: 'button', class: 'btn', text: 'Show ' + Math.min(left, cell.per) + ' more (' + left + ' left)' });
    cell.more = h('div', { class: 'more' }, btn);
    cell.more.cellRef = cell;
    cell.el.append(cell.more);
    moreObserver.observe(cell.more);
  }
}
function onRows(entries) {
  for (const e of entries) {
    if (!e.isIntersecting) continue;
    rowObserver.unobserve(e.target);
    renderRow(+e.target.dataset.r);
  }
}
function onMore(entries) {
  for (const e of entries) if (e.isIntersecting && e.target.cellRef && e.target.isConnected) appendChunk(e.target.cellRef);
}
// Make sure a unit's card is in the DOM (for keyboard moves, the viewer and the picks list).
function ensureRendered(u) {
  if (u.el && u.el.isConnected) return u.el;
  return view().ensure(u);
}
function ensureCard(u) {
  for (let ri = 0; ri < L.cells.length; ri++) {
    for (let ci = 0; ci < L.cells[ri].length; ci++) {
      if (L.cells[ri][ci].indexOf(u) < 0) continue;
      renderRow(ri);
      const cell = L.rows[ri].cells[ci];
      while (cell.shown <= cell.units.indexOf(u)) appendChunk(cell);
      return u.el;
    }
  }
  return null;
}
function renderAll() {
  if (!L) return;
  view().all();
}
function renderAllCards() {
  L.rows.forEach((state, ri) => {
    renderRow(ri);
    for (const cell of state.cells) while (cell.shown < cell.units.length) appendChunk(cell);
  });
}
function refreshCard(el, u) { fillCard(el, u, +el.dataset.ri, +el.dataset.ci); }

// The grid: rows and columns of cards; the contact sheet: the same, smaller, with strips.
Report.views.register('grid', { render: renderGrid, ensure: ensureCard, all: renderAllCards, refresh: refreshCard });
Report.views.register('sheet', { render: renderGrid, ensure: ensureCard, all: renderAllCards, refresh: refreshCard });
