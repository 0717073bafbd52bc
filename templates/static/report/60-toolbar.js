// ------------------------------------------------------------------ toolbar

const rowsSel = $('rows-sel'), colsSel = $('cols-sel');
function fillAxisSelect(sel, value) {
  fill(sel, h('option', { value: '-1', text: '(none)' }),
    DIMS.map((d, i) => h('option', { value: i, text: d.name + ' (' + d.values.length + ')' })));
  sel.value = String(value);
}
function renderControls() {
  fillAxisSelect(rowsSel, S.rows);
  fillAxisSelect(colsSel, S.cols);
  const list = !view().axes;
  rowsSel.disabled = colsSel.disabled = list;
  const filters = $('filters');
  filters.replaceChildren();
  DIMS.forEach((d, i) => {
    if (!list && (i === S.rows || i === S.cols)) return;
    const sel = h('select', { 'data-dim': i, 'aria-label': 'Filter ' + d.name },
      h('option', { value: '-1', text: 'all' }), d.values.map((v, k) => h('option', { value: k, text: clip(v, 60) })));
    sel.value = String(S.filters.has(i) ? S.filters.get(i) : -1);
    filters.append(h('label', null, d.name, sel));
  });
  const chips = $('active-filters');
  chips.replaceChildren();
  const fchip = (text, clear) => {
    const b = h('button', { type: 'button', title: 'Remove this filter', text: '✕' });
    b.addEventListener('click', () => { clear(); render(); });
    chips.append(h('span', { class: 'fchip' }, h('span', { text: text }), b));
  };
  if (S.filters.size || S.status !== 'all' || S.picks !== 'all' || S.q) chips.append(h('span', { class: 'muted', text: 'filter:' }));
  for (const [d, v] of S.filters) fchip(DIMS[d].name + '=' + clip(DIMS[d].values[v], 50), () => S.filters.delete(d));
  if (S.status !== 'all') fchip('status=' + S.status, () => { S.status = 'all'; $('status-sel').value = 'all'; });
  if (S.picks !== 'all') fchip('picks: ' + ($('picks-sel').selectedOptions[0] || { textContent: S.picks }).textContent, () => { S.picks = 'all'; $('picks-sel').value = 'all'; });
  if (S.q) fchip('“' + clip(S.q, 40) + '”', () => { S.q = ''; $('search').value = ''; });
  const jobsShown = L.vis.reduce((n, u) => n + u.jobs.length, 0);
  $('shown-count').textContent = 'showing ' + L.vis.length.toLocaleString('en-US') + ' of ' +
    units.length.toLocaleString('en-US') + ' variants (' + jobs.length.toLocaleString('en-US') + ' jobs' +
    (jobsShown !== jobs.length ? ', ' + jobsShown.toLocaleString('en-US') + ' shown' : '') + ')';
  for (const b of document.querySelectorAll('.seg button')) b.setAttribute('aria-pressed', b.dataset.view === S.view ? 'true' : 'false');
  $('size').value = String(S.size);
  $('prompts-chk').checked = S.prompts;
  $('sort-sel').value = S.sort;
  measureToolbar();
}
function measureToolbar() {
  document.documentElement.style.setProperty('--tb-h', $('toolbar').offsetHeight + 'px');
}
rowsSel.addEventListener('change', () => {
  S.rows = +rowsSel.value;
  if (S.rows === S.cols) S.cols = -1;
  if (S.rows >= 0) S.filters.delete(S.rows);
  render();
});
colsSel.addEventListener('change', () => {
  S.cols = +colsSel.value;
  if (S.rows === S.cols) S.rows = -1;
  if (S.cols >= 0) S.filters.delete(S.cols);
  render();
});
$('swap-axes').addEventListener('click', () => { const r = S.rows; S.rows = S.cols; S.cols = r; render(); });
$('filters').addEventListener('change', (e) => {
  const sel = e.target.closest('select[data-dim]');
  if (!sel) return;
  const d = +sel.dataset.dim, v = +sel.value;
  if (v < 0) S.filters.delete(d); else S.filters.set(d, v);
  render();
});
$('status-sel').addEventListener('change', (e) => { S.status = e.target.value; render(); });
$('picks-sel').addEventListener('change', (e) => { S.picks = e.target.value; render(); });
$('sort-sel').addEventListener('change', (e) => { S.sort = e.target.value; render(); });
const onSearch = debounce(() => { S.q = $('search').value.trim(); render(); }, 160);
$('search').addEventListener('input', onSearch);
for (const b of document.querySelectorAll('.seg button')) {
  b.addEventListener('click', () => { S.view = b.dataset.view; render(); });
}
const onSize = debounce(() => render(), 120);
$('size').addEventListener('input', (e) => { S.size = +e.target.value; grid.style.setProperty('--card', S.size + 'px'); onSize(); });
$('prompts-chk').addEventListener('change', (e) => { S.prompts = e.target.checked; grid.classList.toggle('hide-prompts', !S.prompts); saveUi(); });
$('loop-chk').addEventListener('change', (e) => {
  S.loop = e.target.checked;
  for (const v of grid.querySelectorAll('video')) v.loop = S.loop;
});
function setMuted(m) {
  S.muted = m;
  const b = $('mute-btn');
  b.setAttribute('aria-pressed', m ? 'true' : 'false');
  b.textContent = m ? 'muted' : 'sound on';
  b.title = m ? 'Sound off (videos play muted)' : 'Sound on';
  for (const v of document.querySelectorAll('#grid video, #view-stage video')) v.muted = m;
}
$('mute-btn').addEventListener('click', () => setMuted(!S.muted));
$('help-btn').addEventListener('click', () => openHelp());
window.addEventListener('resize', debounce(() => { measureToolbar(); if (S.view !== 'list') render(); }, 250));
