// ------------------------------------------------------------------ list view

function renderList() {
  const listDims = DIMS.map((d, i) => i).filter((i) => DIMS[i].name !== 'name');
  // The columns fit the window (table-layout: fixed, report.css): long text is clipped, in full
  // in its title; the dimensions share what the fixed columns leave.
  const head = h('tr', null, h('th', { class: 'c-tog', text: '' }), h('th', { class: 'c-video', text: 'video' }), h('th', { class: 'c-name', text: 'name' }),
    listDims.map((i) => h('th', { class: 'c-dim', title: DIMS[i].name, text: DIMS[i].name })), h('th', { class: 'c-prompt', text: 'prompt' }), h('th', { class: 'c-status', text: 'status' }),
    RUN.share ? null : h('th', { class: 'num sortable c-num', 'data-sort': 'cost-', text: 'credits' }), h('th', { class: 'num sortable c-num', 'data-sort': 'lat+', text: 'latency' }),
    h('th', { class: 'c-cmp', text: 'compare' }), h('th', { class: 'c-note', text: 'note' }));
  const tbody = h('tbody');
  const table = h('table', { class: 'list' }, h('thead', null, head), tbody);
  grid.append(table);
  moreObserver = new IntersectionObserver((entries) => {
    for (const e of entries) if (e.isIntersecting && e.target.isConnected) appendRows();
  }, { rootMargin: '800px 0px' });
  L.list = { tbody: tbody, shown: 0, more: null, dims: listDims };
  appendRows();
}
function appendRows() {
  const st = L.list;
  const end = Math.min(L.vis.length, st.shown + 150);
  const frag = document.createDocumentFragment();
  for (let i = st.shown; i < end; i++) {
    const u = L.vis[i];
    const tr = h('tr', { class: 'card', tabindex: S.focus === u.id ? '0' : '-1', 'data-u': u.id });
    fillRow(tr, u);
    u.el = tr;
    frag.append(tr);
  }
  st.shown = end;
  if (st.more) { moreObserver.unobserve(st.more); st.more.remove(); st.more = null; }
  st.tbody.append(frag);
  if (st.shown < L.vis.length) {
    st.more = h('tr', { class: 'more' }, h('td', { colspan: st.dims.length + (RUN.share ? 8 : 9), text: (L.vis.length - st.shown) + ' more…' }));
    st.tbody.append(st.more);
    moreObserver.observe(st.more);
  }
}
function fillRow(tr, u) {
  const j = u.jobs[u.cur];
  const s = starOf(j);
  tr.dataset.key = j.key;
  tr.classList.toggle('starred', s === 1);
  tr.classList.toggle('rejected', s === -1);
  const st = stateOf(j.state);
  const thumb = j.media && j.media.poster ? h('img', { class: 'thumb', src: j.media.poster, loading: 'lazy', alt: '', title: 'Open (enter)' })
    : h('span', { class: 'pill tone-' + st[1], text: st[0] });
  fill(tr,
    h('td', null, h('button', { type: 'button', class: 'tog star', 'aria-pressed': s === 1 ? 'true' : 'false', title: 'Star (s)', text: '★' }),
      h('button', { type: 'button', class: 'tog rej', 'aria-pressed': s === -1 ? 'true' : 'false', title: 'Reject (x)', text: '✕' })),
    h('td', null, thumb),
    h('td', { class: 'name', title: clip(j.name, 400) }, clip(j.name, 120), stackEl(u)),
    L.list.dims.map((d) => h('td', { class: 'dim', title: DIMS[d].name + ': ' + clip(dimValue(j, d), 400), text: clip(dimValue(j, d), 160) })),
    h('td', { title: clip(j.prompt, 2000) }, promptEl(j.prompt, rowCommon(0))),
    h('td', null, h('span', { class: 'pill tone-' + st[1], text: st[0] }), j.code ? h('div', null, h('code', { text: clip(j.code, 80) })) : null,
      j.message ? h('div', { class: 'err-msg', text: clip(j.message, 400) }) : null),
    RUN.share ? null : h('td', { class: 'num', title: fmtUsd(cost(j)), text: fmtCredits(cost(j)) }),
    h('td', { class: 'num', text: fmtDur(j.latency) }),
    h('td', null, h('label', { class: 'cmp', title: 'Add to compare (c)' }, h('input', { type: 'checkbox', checked: S.compare.indexOf(u.id) >= 0 }))),
    h('td', null, noteOf(j) ? h('div', { class: 'note-line', text: noteOf(j) }) : null));
}
function ensureRow(u) {
  while (L.list && L.list.shown < L.vis.length && !(u.el && u.el.isConnected)) appendRows();
  return u.el;
}
function renderAllRows() { while (L.list && L.list.shown < L.vis.length) appendRows(); }

// The list: one table row per card, every dimension a column; no axes.
Report.views.register('list', { render: renderList, ensure: ensureRow, all: renderAllRows, refresh: fillRow, axes: false });
