// ------------------------------------------------------------------ picks panel, export, import

function updatePickCounts() {
  let n = 0;
  for (const p of picks.values()) if (p.s === 1) n++;
  $('pick-count').textContent = String(n);
  $('export-count').textContent = String(n);
}
function openPicks() { renderPicks(); $('picks').hidden = false; $('picks-close').focus(); }
function closePicks() { $('picks').hidden = true; }
function renderPicks() {
  const won = starred();
  let rejected = 0;
  for (const p of picks.values()) if (p.s === -1) rejected++;
  $('picks-summary').textContent = won.length + ' starred · ' + rejected + ' rejected';
  const tally = $('tally');
  tally.replaceChildren();
  if (!won.length) tally.append(h('p', { class: 'muted', text: 'Star cards with s (or ★) to see which values win.' }));
  DIMS.forEach((d, k) => {
    if (!won.length) return;
    const counts = new Map();
    for (const j of won) counts.set(j.dims[k], (counts.get(j.dims[k]) || 0) + 1);
    const sorted = Array.from(counts.entries()).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    const block = h('div', { class: 'dim' }, h('b', { text: d.name }));
    sorted.forEach(([v, n], i) => {
      const value = v >= 0 ? d.values[v] : '';
      const bar = h('span', { class: 'bar' }, h('i'));
      bar.firstChild.style.width = Math.round((100 * n) / won.length) + '%';
      block.append(h('div', { class: 'row' + (i === 0 && sorted.length > 1 ? ' lead' : ''),
        title: d.name + ' ' + clip(value, 200) + ' — ' + n + ' of ' + won.length + ' picks' },
      h('span', { text: clip(value, 80) }), bar, h('span', { class: 'muted', text: n + ' of ' + won.length })));
    });
    tally.append(block);
  });
  const list = $('picks-list');
  fill(list, won.map((j) => {
    const u = j.unit;
    const thumb = j.media && j.media.poster ? h('img', { src: j.media.poster, alt: '', loading: 'lazy' }) : h('span', { class: 'noimg' });
    const li = h('li', { 'data-u': u.id }, thumb, h('div', null,
      h('div', { class: 'name', text: clip(j.name, 80) + (u.jobs.length > 1 ? ' · ' + j.sample + '/' + u.jobs.length : '') }),
      h('div', { class: 'chips' }, DIMS.map((d, k) => (d.name === 'name' ? null : chip(k, j.dims[k], false)))),
      noteOf(j) ? h('div', { class: 'note-line', text: noteOf(j) }) : null));
    return li;
  }));
}
$('picks-list').addEventListener('click', (e) => {
  const li = e.target.closest('li[data-u]');
  if (!li) return;
  const u = units[+li.dataset.u];
  if (L.vis.indexOf(u) < 0) { S.filters.clear(); S.status = 'all'; S.picks = 'all'; S.q = ''; $('search').value = ''; $('status-sel').value = 'all'; $('picks-sel').value = 'all'; render(); }
  focusUnit(u);
});
$('picks-btn').addEventListener('click', () => ($('picks').hidden ? openPicks() : closePicks()));
$('picks-close').addEventListener('click', closePicks);

function csvCell(value) {
  const v = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]|^\s|\s$/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
}
function winnersCsv() {
  const csvDims = DATA.csvDims.map((name) => dimIndex[name]);
  const lines = [DATA.csvColumns];
  for (const j of starred()) {
    lines.push([RUN.id, j.key, j.variant, j.tier, j.name].concat(csvDims.map((d) => dimValue(j, d)), [noteOf(j)]));
  }
  return lines.map((cells) => cells.map(csvCell).join(',')).join('\r\n') + '\r\n';
}
function exportWinners() {
  const n = starred().length;
  if (!n) { toast('No winners yet: star cards with s (or ★) first'); return; }
  const url = URL.createObjectURL(new Blob([winnersCsv()], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: 'winners.csv' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
  toast('winners.csv: ' + n + ' winner' + (n === 1 ? '' : 's') + '. Next: runner promote ' + RUN.id + ' --winners winners.csv');
}
function parseCsv(text) {
  const rows = [];
  let row = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') { if (text[i + 1] === '"') { field += '"'; i++; } else quoted = false; }
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') { row.push(field); field = ''; }
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field); field = '';
      rows.push(row); row = [];
    } else field += ch;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows.filter((r) => r.length > 1 || (r.length === 1 && r[0] !== ''));
}
function importPicks(text) {
  const all = parseCsv(text.replace(/^\uFEFF/, '')), top = all.length ? all[0].map((c) => c.trim().toLowerCase()) : [];
  const other = Report.importers.find((imp) => imp.accepts(top)); // e.g. duels.csv (77-duels.js)
  if (other) { toast(other.import(top, all.slice(1).map((r) => r.map((c) => (c[0] === "'" ? c.slice(1) : c))), '')); return; }
  const rows = parseCsv(text.replace(/^\uFEFF/, ''));
  if (!rows.length) { toast('That file is empty'); return; }
  const head = rows[0].map((c) => c.trim().toLowerCase());
  const ki = head.indexOf('job_key'), ni = head.indexOf('note');
  if (ki < 0) { toast('Not a winners.csv: it has no job_key column'); return; }
  let added = 0, missing = 0;
  for (const r of rows.slice(1)) {
    const j = byKey.get((r[ki] || '').trim());
    if (!j || j.isParent) { missing++; continue; }
    const p = picks.get(j.key) || { s: 0, note: '' };
    p.s = 1;
    const note = ni >= 0 ? (r[ni] || '').trim() : '';
    if (note && p.note.indexOf(note) < 0) p.note = p.note ? p.note + '\n' + note : note;
    picks.set(j.key, p);
    added++;
  }
  savePicks();
  updatePickCounts();
  render();
  if (!$('picks').hidden) renderPicks();
  toast('Imported ' + added + ' pick' + (added === 1 ? '' : 's') + (missing ? '; ' + missing + ' row' + (missing === 1 ? '' : 's') + ' not in this run' : ''));
}
$('export-btn').addEventListener('click', exportWinners);
$('picks-export').addEventListener('click', exportWinners);
$('picks-import').addEventListener('click', () => $('import-file').click());
$('import-file').addEventListener('change', (e) => {
  const file = e.target.files && e.target.files[0];
  if (!file) return;
  file.text().then(importPicks, (err) => toast('Could not read ' + file.name + ': ' + err.message));
  e.target.value = '';
});
let clearArmed = 0;
$('picks-clear').addEventListener('click', (e) => {
  if (!clearArmed) {
    e.target.textContent = 'Click again to clear every pick';
    clearArmed = setTimeout(() => { clearArmed = 0; e.target.textContent = 'Clear all picks'; }, 4000);
    return;
  }
  clearTimeout(clearArmed); clearArmed = 0; e.target.textContent = 'Clear all picks';
  picks.clear(); savePicks(); updatePickCounts(); render(); renderPicks();
});
