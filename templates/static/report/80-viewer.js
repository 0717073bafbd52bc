// ------------------------------------------------------------------ full view

const V = { order: [], idx: 0 };
function openViewer(u) {
  if (!L) return;
  V.order = L.order.length ? L.order : L.vis;
  V.idx = Math.max(0, V.order.indexOf(u));
  stopAllVideos();
  $('viewer').hidden = false;
  renderViewer();
  $('view-close').focus();
}
function closeViewer() {
  if ($('viewer').hidden) return;
  if (document.fullscreenElement) document.exitFullscreen();
  const v = $('view-stage').querySelector('video');
  if (v) { v.pause(); v.removeAttribute('src'); v.load(); }
  $('view-stage').replaceChildren();
  $('viewer').hidden = true;
  const u = V.order[V.idx];
  if (u) focusUnit(u);
}
function renderViewer() {
  const u = V.order[V.idx];
  if (!u) return;
  const j = u.jobs[u.cur];
  $('view-title').textContent = clip(j.name, 120);
  $('view-pos').textContent = (V.idx + 1) + ' / ' + V.order.length;
  const stage = $('view-stage');
  const old = stage.querySelector('video');
  if (old) { old.pause(); old.removeAttribute('src'); old.load(); }
  if (j.media && j.media.pruned) stage.replaceChildren(prunedBox(j));
  else if (j.media) {
    const v = h('video', { preload: 'auto', playsinline: true, controls: true, src: j.media.video, poster: j.media.poster });
    v.muted = S.muted; v.loop = S.loop; v.autoplay = true;
    stage.replaceChildren(v);
  } else stage.replaceChildren(problemBox(j));
  const info = $('view-info');
  let ri = 0;
  if (L.cells.length > 1) for (let r = 0; r < L.cells.length; r++) if (L.cells[r].some((cell) => cell.indexOf(u) >= 0)) { ri = r; break; }
  fill(info,
    h('div', { class: 'chips' }, DIMS.map((d, k) => chip(k, u.dims[k], k !== L.r && k !== L.c))),
    h('h4', { text: 'prompt' }), promptEl(j.prompt, rowCommon(ri)),
    stackEl(u), footEl(u, j, false),
    h('label', { class: 'cmp in-view' }, h('input', { type: 'checkbox', checked: S.compare.indexOf(u.id) >= 0 }), 'compare (c)'),
    noteOf(j) ? h('div', { class: 'note-line', text: noteOf(j) }) : null,
    j.mismatches ? h('p', { class: 'flag', text: '⚠ differs from the request: ' + j.mismatches }) : null,
    h('h4', { text: 'job' }), h('code', { text: j.key }),
    j.parent ? h('div', { class: 'acts' }, h('button', { type: 'button', class: 'btn abflip', text: 'A/B with the ' + j.parent.tier + ' render' })) : null);
}
function viewerStep(d) {
  const n = V.order.length;
  if (!n) return;
  V.idx = (V.idx + d + n) % n;
  renderViewer();
}
function viewerKeys(e) {
  const u = V.order[V.idx];
  switch (e.key) {
    case 'Escape': case 'Enter': case 'f': e.preventDefault(); closeViewer(); return;
    case 'ArrowRight': case 'l': e.preventDefault(); viewerStep(1); return;
    case 'ArrowLeft': case 'h': e.preventDefault(); viewerStep(-1); return;
    case 'ArrowDown': case 'j': e.preventDefault(); if (u) { setSample(u, (u.cur + 1) % u.jobs.length); renderViewer(); } return;
    case 'ArrowUp': case 'k': e.preventDefault(); if (u) { setSample(u, (u.cur - 1 + u.jobs.length) % u.jobs.length); renderViewer(); } return;
    case ' ': {
      e.preventDefault();
      const v = $('view-stage').querySelector('video');
      if (v) { if (v.paused) { const p = v.play(); if (p && p.catch) p.catch(() => {}); } else v.pause(); }
      return;
    }
    case 's': e.preventDefault(); if (u) { toggleStar(u, 1); renderViewer(); } return;
    case 'x': e.preventDefault(); if (u) { toggleStar(u, -1); renderViewer(); } return;
    case 'c': e.preventDefault(); if (u) { toggleCompare(u, S.compare.indexOf(u.id) < 0); renderViewer(); } return;
    case 'n': e.preventDefault(); if (u) openNote(u); return;
    case '?': e.preventDefault(); openHelp(); return;
    default: break;
  }
}
$('view-close').addEventListener('click', closeViewer);
$('view-full').addEventListener('click', () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else if ($('viewer').requestFullscreen) $('viewer').requestFullscreen().catch(() => toast('Full screen is not allowed here'));
});
$('view-prev').addEventListener('click', () => viewerStep(-1));
$('view-next').addEventListener('click', () => viewerStep(1));
$('view-info').addEventListener('click', (e) => {
  const u = V.order[V.idx];
  if (!u) return;
  if (e.target.closest('.tog.star')) { toggleStar(u, 1); renderViewer(); }
  else if (e.target.closest('.tog.rej')) { toggleStar(u, -1); renderViewer(); }
  else if (e.target.closest('.abflip')) openPair(u);
  else if (e.target.closest('.note-line')) openNote(u);
  else {
    const sb = e.target.closest('.stack button');
    if (sb) { setSample(u, +sb.dataset.k); renderViewer(); }
  }
});
$('view-info').addEventListener('change', (e) => {
  const u = V.order[V.idx];
  if (u && e.target.matches('.cmp input')) toggleCompare(u, e.target.checked);
});
