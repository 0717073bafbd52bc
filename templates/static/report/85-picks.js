// ------------------------------------------------------------------ picks panel, export, import

function updatePickCounts() {
  let own = 0;
  for (const p of picks.values()) if (p.s === 1) own++;
  $('pick-count').textContent = String(imported.size ? starred().length : own); // everyone's
  $('export-count').textContent = String(own); // winners.csv holds this browser's stars
}
function openPicks() { renderPicks(); $('picks').hidden = false; $('picks-close').focus(); }
function closePicks() { $('picks').hidden = true; }

// "3 of 4 starred" and the other reviewers' notes, under a card (40-cards.js) and in the
// picks list; null when there is nothing to say (no files imported, no notes kept).
function votesEl(j) {
  const notes = othersNotes(j);
  const names = imported.size ? votesOf(j) : [];
  if (!names.length && !notes.length) return null;
  const el = h('div', { class: 'votes' });
  if (names.length) {
    el.append(h('span', { class: 'votes-count', title: 'Starred by ' + names.join(', '),
      text: names.length + ' of ' + reviewersKnown() + ' starred' }));
  }
  if (notes.length) {
    el.append(h('ul', { class: 'votes-notes' }, notes.map((n) =>
      h('li', null, h('b', { text: clip(n.name, 40) + ': ' }), h('span', { class: 'note-text', text: n.note })))));
  }
  return el;
}
function renderPicks() {
  const won = starred();
  let rejected = 0;
  for (const p of picks.values()) if (p.s === -1) rejected++;
  const team = reviewersKnown();
  $('picks-summary').textContent = won.length + ' starred · ' + rejected + ' rejected' +
    (imported.size ? ' · ' + team + ' reviewers' : '');
  showReviewer();
  const tally = $('tally');
  tally.replaceChildren();
  if (!won.length) tally.append(h('p', { class: 'muted', text: 'Star cards with s (or ★) to see which values win.' }));
  // every reviewer's star is one vote: a card two reviewers starred counts twice
  const weight = new Map(won.map((j) => [j, Math.max(1, votesOf(j).length)]));
  let total = 0;
  for (const w of weight.values()) total += w;
  DIMS.forEach((d, k) => {
    if (!won.length) return;
    const counts = new Map();
    for (const j of won) counts.set(j.dims[k], (counts.get(j.dims[k]) || 0) + weight.get(j));
    const sorted = Array.from(counts.entries()).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    const block = h('div', { class: 'dim' }, h('b', { text: d.name }));
    sorted.forEach(([v, n], i) => {
      const value = v >= 0 ? d.values[v] : '';
      const bar = h('span', { class: 'bar' }, h('i'));
      bar.firstChild.style.width = Math.round((100 * n) / total) + '%';
      block.append(h('div', { class: 'row' + (i === 0 && sorted.length > 1 ? ' lead' : ''),
        title: d.name + ' ' + clip(value, 200) + ' — ' + n + ' of ' + total + (imported.size ? ' votes' : ' picks') },
      h('span', { text: clip(value, 80) }), bar, h('span', { class: 'muted', text: n + ' of ' + total })));
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
      noteOf(j) ? h('div', { class: 'note-line', text: noteOf(j) }) : null,
      votesEl(j)));
    return li;
  }));
}

// ------------------------------------------------------------------ the reviewer's name

// A small dialog (not window.prompt) asks once; fn(name) then carries on with what needed it.
let reviewerWaiting = [];
function askReviewer(fn) {
  if (fn) reviewerWaiting.push(fn);
  let box = $('reviewer');
  if (!box) {
    box = h('div', { id: 'reviewer', class: 'overlay small-dialog', role: 'dialog', 'aria-modal': 'true', 'aria-label': 'Your name' },
      h('form', { class: 'note-box', id: 'reviewer-form' },
        h('b', { text: 'Who is reviewing?' }),
        h('span', { class: 'muted small', text: 'Your name goes with your stars and notes (and into winners.csv), so a team\'s picks can be merged and their votes counted. Kept in this browser.' }),
        h('input', { id: 'reviewer-name', type: 'text', maxlength: 80, autocomplete: 'name', placeholder: 'e.g. Ann', 'aria-label': 'Your name' }),
        h('div', { class: 'note-actions' }, h('span', { class: 'grow-space' }),
          h('button', { type: 'button', class: 'btn', id: 'reviewer-cancel', text: 'Cancel' }),
          h('button', { type: 'submit', class: 'btn primary', id: 'reviewer-save', text: 'OK' }))));
    document.body.append(box);
    box.addEventListener('submit', (e) => {
      e.preventDefault();
      const name = cleanName($('reviewer-name').value);
      if (!name) { $('reviewer-name').focus(); return; }
      closeReviewer(name);
    });
    $('reviewer-cancel').addEventListener('click', () => closeReviewer(''));
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); closeReviewer(''); }
      else e.stopPropagation(); // typing a name is not the page's keys
    });
  }
  $('reviewer-name').value = reviewerName;
  box.hidden = false;
  // the action that asked may move the focus back to its card right after: take it after that
  setTimeout(() => $('reviewer-name').focus(), 0);
}
function closeReviewer(name) {
  $('reviewer').hidden = true;
  const waiting = reviewerWaiting;
  reviewerWaiting = [];
  if (!name) { const u = focused(); if (u) u.el.focus({ preventScroll: true }); return; }
  setReviewer(name);
  for (const fn of waiting) fn(name);
  updatePickCounts();
  const u = focused();
  if (u) { refreshPicks(u); u.el.focus({ preventScroll: true }); }
}
// "Reviewing as Ann · change" in the picks panel.
function showReviewer() {
  let line = $('reviewer-line');
  if (!line) {
    line = h('p', { id: 'reviewer-line', class: 'small reviewer-line' });
    $('picks').querySelector('.panel-actions').after(line);
    line.addEventListener('click', (e) => { if (e.target.closest('button')) askReviewer(null); });
  }
  fill(line, reviewerName ? ['Reviewing as ', h('b', { text: reviewerName }), ' '] : 'No reviewer name yet. ',
    h('button', { type: 'button', class: 'btn subtle', id: 'reviewer-change', text: reviewerName ? 'change' : 'set your name' }));
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

// Spreadsheet-safe cells, the rule of runner/review/csvsafe.py: a cell that starts with
// = + - @ tab, CR or an apostrophe gets one leading apostrophe (Excel then shows it as text,
// never runs it as a formula); reading strips exactly one (docs/report-page.md).
function toExcel(v) { return /^[=+\-@\t\r']/.test(v) ? "'" + v : v; }
function fromExcel(v) { return v.charAt(0) === "'" ? v.slice(1) : v; }
function csvCell(value) {
  const v = toExcel(value === null || value === undefined ? '' : String(value));
  return /[",;\t\r\n]|^\s|\s$/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
}
// winners.csv: this browser's stars, each with its reviewer (DATA.csvColumns,
// report_data.winners_columns): run_id, job_key, variant_key, tier, name, dims…, reviewer, note, prompt.
function ownStarred() { return jobs.filter((j) => starOf(j) === 1); }
function winnersCsv() {
  const csvDims = DATA.csvDims.map((name) => dimIndex[name]);
  const lines = [DATA.csvColumns];
  for (const j of ownStarred()) {
    lines.push([RUN.id, j.key, j.variant, j.tier, j.name].concat(csvDims.map((d) => dimValue(j, d)),
      [ownName(picks.get(j.key)), noteOf(j), j.prompt]));
  }
  return lines.map((cells) => cells.map(csvCell).join(',')).join('\r\n') + '\r\n';
}
function exportWinners() {
  const n = ownStarred().length;
  if (!n) { toast('No winners yet: star cards with s (or ★) first'); return; }
  if (!reviewerName) { Report.needReviewer(exportWinners); return; }
  const url = URL.createObjectURL(new Blob([winnersCsv()], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: 'winners.csv' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
  toast('winners.csv: ' + n + ' winner' + (n === 1 ? '' : 's') + ' starred by ' + reviewerName + '. Next: runner promote ' + RUN.id + ' --winners winners.csv');
}
// Rows of a CSV whose separator is the one its header uses most (, ; or tab), as Python's
// reader does for `runner promote` (runner/grid/sheet.py).
function parseCsv(text) {
  const head = text.split('\n', 1)[0];
  const count = (c) => head.split(c).length - 1;
  let sep = ',';
  for (const c of [';', '\t']) if (count(c) > count(sep)) sep = c;
  const rows = [];
  let row = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') { if (text[i + 1] === '"') { field += '"'; i++; } else quoted = false; }
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === sep) { row.push(field); field = ''; }
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field); field = '';
      rows.push(row); row = [];
    } else field += ch;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows.filter((r) => r.length > 1 || (r.length === 1 && r[0] !== ''));
}
// One file of an import: a winners.csv (any reviewer's, or a merged one), or a file one of
// Report.importers accepts (e.g. duels.csv). `fresh` is the set of reviewers this import has
// already seen: a reviewer's first file in an import replaces what was imported from them
// before. Returns the message for the toast.
function importText(text, fileName, fresh) {
  const rows = parseCsv(text.replace(/^\uFEFF/, ''));
  if (!rows.length) return fileName + ': empty';
  const head = rows[0].map((c) => c.trim().toLowerCase());
  const data = rows.slice(1).map((r) => r.map(fromExcel));
  for (const imp of Report.importers) if (imp.accepts(head)) return imp.import(head, data, fileName);
  const ki = head.indexOf('job_key'), ni = head.indexOf('note'), ri = head.indexOf('reviewer');
  const runi = head.indexOf('run_id') >= 0 ? head.indexOf('run_id') : head.indexOf('run');
  if (ki < 0) return fileName + ': not a winners.csv (it has no job_key column)';
  let added = 0, missing = 0;
  const who = new Set();
  for (const r of data) {
    const j = byKey.get((r[ki] || '').trim());
    const other = runi >= 0 ? (r[runi] || '').trim() : '';
    if (!j || j.isParent || (other && other !== RUN.id)) { missing++; continue; }
    const name = cleanName(ri >= 0 ? r[ri] || '' : '') || cleanName(fileName);
    const id = reviewerId(name);
    const note = ni >= 0 ? (r[ni] || '').trim() : '';
    if (reviewerName && id === reviewerId(reviewerName)) {
      // this browser's own reviewer (e.g. picks made on another computer): they join the own
      // picks, so un-starring here later takes the vote away
      const p = picks.get(j.key) || { s: 0, note: '', r: reviewerName };
      p.s = 1;
      if (note && p.note.indexOf(note) < 0) p.note = p.note ? p.note + '\n' + note : note;
      picks.set(j.key, p);
      who.add(name);
      added++;
      continue;
    }
    if (!fresh.has(id)) { fresh.add(id); imported.set(id, { name: name, picks: new Map() }); }
    const mine = imported.get(id).picks;
    if (!mine.has(j.key) || note) mine.set(j.key, note);
    who.add(name);
    added++;
  }
  return fileName + ': ' + added + ' pick' + (added === 1 ? '' : 's') +
    (who.size ? ' by ' + Array.from(who).join(', ') : '') +
    (missing ? '; ' + missing + ' row' + (missing === 1 ? '' : 's') + ' not in this run' : '');
}
function importFiles(files) {
  const fresh = new Set();
  Promise.all(files.map((f) => f.text().then((text) => ({ f: f, text: text }),
    (err) => ({ f: f, error: err.message })))).then((read) => {
    const said = read.map((x) => (x.error ? 'Could not read ' + x.f.name + ': ' + x.error : importText(x.text, x.f.name, fresh)));
    savePicks();
    updatePickCounts();
    render();
    if (!$('picks').hidden) renderPicks();
    toast('Imported ' + said.join(' · '));
  });
}
$('export-btn').addEventListener('click', exportWinners);
$('picks-export').addEventListener('click', exportWinners);
$('picks-import').addEventListener('click', () => $('import-file').click());
$('import-file').multiple = true; // several reviewers' files at once
$('import-file').addEventListener('change', (e) => {
  const files = Array.from(e.target.files || []);
  if (files.length) importFiles(files);
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
  picks.clear(); imported.clear(); savePicks(); updatePickCounts(); render(); renderPicks();
});
