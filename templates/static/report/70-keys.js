// ------------------------------------------------------------------ focus and keys

function unitOf(el) { const card = el && el.closest ? el.closest('.card') : null; return card ? units[+card.dataset.u] : null; }
function focusUnit(u, scroll) {
  if (!u) return;
  const el = ensureRendered(u);
  if (!el) return;
  if (S.focus >= 0 && units[S.focus].el) units[S.focus].el.setAttribute('tabindex', '-1');
  S.focus = u.id;
  el.setAttribute('tabindex', '0');
  el.focus({ preventScroll: true });
  if (scroll !== false) el.scrollIntoView({ block: 'nearest', inline: 'nearest' });
}
// The focused card, drawn again if a re-render (a resize, a live reload's layout) replaced its
// element: the keys keep acting on the card the reviewer chose, never jump back to the first.
function focused() {
  if (S.focus < 0) return null;
  const u = units[S.focus];
  if (u.el && u.el.isConnected) return u;
  return L && L.vis.indexOf(u) >= 0 && ensureRendered(u) ? u : null;
}
function move(dir) {
  const u = focused();
  if (!u) { if (L && L.order.length) focusUnit(L.order[0]); return; }
  if (S.view === 'list') {
    const i = L.vis.indexOf(u) + (dir === 'down' || dir === 'right' ? 1 : -1);
    if (i >= 0 && i < L.vis.length) focusUnit(L.vis[i]);
    return;
  }
  const pick = () => {
    const r0 = u.el.getBoundingClientRect();
    const cx = (r0.left + r0.right) / 2, cy = (r0.top + r0.bottom) / 2;
    let best = null, bestScore = Infinity;
    for (const el of grid.querySelectorAll('.card')) {
      if (el === u.el) continue;
      const r = el.getBoundingClientRect();
      const x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
      let main, cross, overlap;
      if (dir === 'left' || dir === 'right') {
        main = dir === 'right' ? x - cx : cx - x; cross = Math.abs(y - cy);
        overlap = r.top < r0.bottom - 4 && r.bottom > r0.top + 4;
        if (!overlap) continue;
      } else {
        main = dir === 'down' ? y - cy : cy - y; cross = Math.abs(x - cx);
        overlap = r.left < r0.right - 4 && r.right > r0.left + 4;
      }
      if (main <= 4) continue;
      const score = main + cross * 2 + (overlap ? 0 : 100000);
      if (score < bestScore) { bestScore = score; best = el; }
    }
    return best;
  };
  let best = pick();
  if (!best && dir === 'down') {
    const more = u.el.closest('.gcell') && u.el.closest('.gcell').querySelector('.more');
    if (more && more.cellRef) { appendChunk(more.cellRef); best = pick(); }
  }
  if (best) focusUnit(units[+best.dataset.u]);
}
function setSample(u, k) {
  if (k < 0 || k >= u.jobs.length || k === u.cur) return;
  u.cur = k;
  refreshUnit(u);
  if (S.focus === u.id && u.el) u.el.focus({ preventScroll: true });
}
function toggleStar(u, value) {
  const j = u.jobs[u.cur];
  setPick(j, starOf(j) === value ? 0 : value);
  if (S.focus === u.id && u.el) u.el.focus({ preventScroll: true });
}
function playFocused(u) {
  const boxes = u.el ? Array.from(u.el.querySelectorAll('.media[data-k]')) : [];
  if (!boxes.length) { toast('This card has no video'); return; }
  const playing = boxes.some((b) => { const v = b.querySelector('video'); return v && !v.paused; });
  for (const b of boxes) { if (playing) stopVideo(b, false); else startVideo(b, true); }
}

grid.addEventListener('click', (e) => {
  const more = e.target.closest('.more');
  if (more && more.cellRef) { appendChunk(more.cellRef); return; }
  const th = e.target.closest('th.sortable');
  if (th) { S.sort = th.dataset.sort; render(); return; }
  const u = unitOf(e.target);
  if (!u) return;
  if (e.target.closest('.tog.star')) { toggleStar(u, 1); return; }
  if (e.target.closest('.tog.rej')) { toggleStar(u, -1); return; }
  if (e.target.closest('.cmp')) return; // the checkbox's change event does the work
  const sb = e.target.closest('.stack button');
  if (sb) { setSample(u, +sb.dataset.k); return; }
  if (e.target.closest('.abflip')) { openPair(u); return; }
  const prompt = e.target.closest('.prompt');
  if (prompt) { prompt.classList.toggle('open'); focusUnit(u, false); return; }
  if (e.target.closest('.note-line')) { focusUnit(u, false); openNote(u); return; }
  if (e.target.closest('.thumb')) { focusUnit(u, false); openViewer(u); return; }
  const box = e.target.closest('.media[data-k]');
  focusUnit(u, false);
  if (box) togglePlay(box);
});
grid.addEventListener('focusin', (e) => {
  const u = unitOf(e.target);
  if (!u || S.focus === u.id) return;
  if (S.focus >= 0 && units[S.focus].el) units[S.focus].el.setAttribute('tabindex', '-1');
  S.focus = u.id;
  if (u.el) u.el.setAttribute('tabindex', '0');
});
grid.addEventListener('dblclick', (e) => {
  const u = unitOf(e.target);
  if (u && !e.target.closest('button, input, label')) openViewer(u);
});
grid.addEventListener('change', (e) => {
  if (!e.target.matches('.cmp input')) return;
  const u = unitOf(e.target);
  if (u) { toggleCompare(u, e.target.checked); focusUnit(u, false); }
});

function typing(el) {
  return el && (el.isContentEditable || /^(TEXTAREA|SELECT)$/.test(el.tagName) ||
    (el.tagName === 'INPUT' && !/^(checkbox|radio|range|button)$/.test(el.type)));
}
const ARROWS = { ArrowLeft: 'left', ArrowRight: 'right', ArrowUp: 'up', ArrowDown: 'down', h: 'left', l: 'right', k: 'up', j: 'down' };
document.addEventListener('keydown', (e) => {
  if (!$('note').hidden) return noteKeys(e);
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (!$('help').hidden) { if (e.key === 'Escape' || e.key === '?') { e.preventDefault(); closeHelp(); } return; }
  if (!$('compare').hidden) return compareKeys(e);
  if (!$('viewer').hidden) return viewerKeys(e);
  if ((e.key === ' ' || e.key === 'Enter') && e.target.closest && e.target.closest('button, a, summary, label') &&
      !e.target.closest('.card')) return; // let buttons and links do their own thing
  if (typing(e.target)) {
    if (e.key === 'Escape') { e.target.blur(); e.preventDefault(); }
    return;
  }
  if (e.key === 'Escape') {
    if (!$('picks').hidden) { closePicks(); e.preventDefault(); }
    return;
  }
  const dir = ARROWS[e.key];
  if (dir) { e.preventDefault(); move(dir); return; }
  const u = focused();
  switch (e.key) {
    case '?': e.preventDefault(); openHelp(); return;
    case '/': e.preventDefault(); $('search').focus(); return;
    case 'v': e.preventDefault(); openCompareFromTray(); return;
    default: break;
  }
  if (!u) {
    if (e.key === ' ' || e.key === 'Enter' || e.key === 'f') { e.preventDefault(); if (L && L.order.length) focusUnit(L.order[0]); }
    return;
  }
  switch (e.key) {
    case ' ': e.preventDefault(); playFocused(u); break;
    case 's': e.preventDefault(); toggleStar(u, 1); break;
    case 'x': e.preventDefault(); toggleStar(u, -1); break;
    case 'c': e.preventDefault(); toggleCompare(u, S.compare.indexOf(u.id) < 0); break;
    case 'Enter': case 'f': e.preventDefault(); openViewer(u); break;
    case 'n': e.preventDefault(); openNote(u); break;
    default:
      if (/^[1-9]$/.test(e.key) && +e.key <= u.jobs.length) { e.preventDefault(); setSample(u, +e.key - 1); }
  }
});
