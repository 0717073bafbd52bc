// ------------------------------------------------------------------ grid rendering

const grid = $('grid');
let rowObserver = null, moreObserver = null;

function render() {
  if (!Report.views.has(S.view)) S.view = 'grid';
  stopAllVideos();
  if (rowObserver) rowObserver.disconnect();
  if (moreObserver) moreObserver.disconnect();
  for (const u of units) u.el = null;
  L = compute();
  grid.className = 'view-' + S.view + (S.prompts ? '' : ' hide-prompts') + (L.r < 0 ? ' no-rows' : '');
  grid.style.setProperty('--card', S.size + 'px');
  grid.replaceChildren();
  if (!L.vis.length) {
    grid.append(h('p', { class: 'muted empty-note', text: units.length ? 'No card matches these filters.' : 'This run has no jobs.' }));
  } else view().render();
  renderControls();
  saveUi();
}

function renderGrid() {
  const gap = S.view === 'sheet' ? 6 : 10;
  let cw = S.view === 'sheet' ? Math.round(S.size * 0.68) : S.size;
  const nc = L.colVals.length;
  const maxCount = new Array(nc).fill(1);
  for (const row of L.cells) row.forEach((cell, ci) => { if (cell.length > maxCount[ci]) maxCount[ci] = cell.length; });
  const rh = L.r < 0 ? 0 : (S.view === 'sheet' ? 110 : 150);
  const avail = Math.max(cw, document.documentElement.clientWidth - 36 - (rh ? rh + gap : 0) - (nc - 1) * gap);
  // Cards side by side per column: the same cap for every column, the largest that fits
  // the window with cards at most 15 % smaller than asked; one per column at least.
  let k = maxCount.map(() => 1);
  for (let cap = Math.max.apply(null, maxCount); cap >= 1; cap--) {
    const per = maxCount.map((m) => Math.min(m, cap));
    const cards = per.reduce((s, n) => s + n, 0);
    const fit = Math.floor((avail - (cards - nc) * gap) / cards);
    if (fit >= cw * 0.85 || cap === 1) {
      k = per;
      if (fit >= cw * 0.85) cw = Math.min(fit, Math.round(cw * 1.3)); // fill the window
      break;
    }
  }
  grid.style.setProperty('--card', cw + 'px');
  const width = (n) => n * cw + (n - 1) * gap;
  grid.style.setProperty('--tpl', (rh ? rh + 'px ' : '') + k.map((n) => width(n) + 'px').join(' '));
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
  const cardH = cw / mediaRatio() + (S.view === 'sheet' ? 44 : 112);
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
    let lines = 1;
    row.forEach((cell, ci) => {
      const el = h('div', { class: 'gcell ' + shapeOf(cell) + (cell.length ? '' : ' empty'), 'data-c': ci });
      sec.append(el);
      const per = Math.max(6, k[ci] * (S.view === 'sheet' ? 6 : 3));
      state.cells.push({ el: el, units: cell, shown: 0, per: per, ri: ri, ci: ci, more: null });
      lines = Math.max(lines, Math.ceil(Math.min(cell.length, per) / k[ci]));
    });
    const est = Math.round(lines * (cardH + gap) + 16);
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
function mediaRatio() {
  const v = getComputedStyle(document.documentElement).getPropertyValue('--media-ar').split('/');
  const r = parseFloat(v[0]) / parseFloat(v[1]);
  return isFinite(r) && r > 0 ? r : 1.6;
}
function renderRow(ri) {
  const state = L.rows[ri];
  if (!state || state.done) return;
  state.done = true;
  state.el.style.minHeight = '';
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
