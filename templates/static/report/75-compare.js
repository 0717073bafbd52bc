// ------------------------------------------------------------------ compare tray

function toggleCompare(u, on) {
  const i = S.compare.indexOf(u.id);
  if (on && i < 0) {
    if (S.compare.length >= MAX_COMPARE) { toast('Compare holds up to ' + MAX_COMPARE + ' cards'); refreshCompare(u); return; }
    S.compare.push(u.id);
  } else if (!on && i >= 0) S.compare.splice(i, 1);
  refreshCompare(u);
  renderTray();
}
function renderTray() {
  const tray = $('tray');
  tray.hidden = S.compare.length === 0;
  $('tray-count').textContent = String(S.compare.length);
  $('tray-open').disabled = S.compare.length < 2;
  fill($('tray-items'), S.compare.map((id) => {
    const j = units[id].jobs[units[id].cur];
    const title = j.name + ' (click to remove)';
    const el = j.media && j.media.poster ? h('img', { src: j.media.poster, alt: '', title: title }) : h('span', { class: 'noimg', title: title });
    el.dataset.u = id;
    return el;
  }));
}
$('tray-items').addEventListener('click', (e) => {
  const el = e.target.closest('[data-u]');
  if (el) toggleCompare(units[+el.dataset.u], false);
});
$('tray-open').addEventListener('click', () => openCompareFromTray());
$('tray-clear').addEventListener('click', () => {
  const ids = S.compare.slice(); S.compare = [];
  for (const id of ids) refreshCompare(units[id]);
  renderTray();
});

// ------------------------------------------------------------------ compare (2-4, one transport)

const C = { items: [], videos: [], master: null, flip: false, shown: 0, raf: 0, muted: true };
function openCompareFromTray() {
  if (S.compare.length < 2) { toast('Add 2 to 4 cards to compare (c, or the compare box on a card)'); return; }
  openCompare(S.compare.map((id) => units[id].jobs[units[id].cur]), false);
}
function openPair(u) {
  const j = u.jobs[u.cur];
  if (j.parent) openCompare([j.parent, j], true);
}
// A compared video is named by what sets it apart: the values of the dimensions that differ
// among the compared set ("9:16 · cinematic" against "16:9 · cinematic"), then the tier and the
// repeat when those differ; the values all share go in the overlay's title.
function differs(list, f) { return list.some((o) => f(o) !== f(list[0])); }
function diffLabel(j, list) {
  const parts = [];
  DIMS.forEach((d, k) => { if (differs(list, (o) => o.dims[k])) parts.push(clip(dimValue(j, k), 40) || '(none)'); });
  if (differs(list, (o) => o.tier)) parts.push(j.tier);
  if (differs(list, (o) => o.sample) && !differs(list, (o) => o.variant)) parts.push('repeat ' + j.sample);
  if (!parts.length && differs(list, (o) => o.prompt)) parts.push('prompt ' + (list.indexOf(j) + 1));
  if (!parts.length && differs(list, (o) => o.sample)) parts.push('repeat ' + j.sample);
  return parts.length ? parts.join(' · ') : clip(j.name, 60);
}
function sharedLabel(list) {
  const parts = [];
  DIMS.forEach((d, k) => { if (!differs(list, (o) => o.dims[k]) && list[0].dims[k] >= 0) parts.push(clip(dimValue(list[0], k), 40)); });
  if (!differs(list, (o) => o.tier)) parts.push(list[0].tier);
  return parts.join(' · ');
}
function openCompare(list, flip) {
  stopAllVideos();
  closeViewer();
  C.items = list; C.flip = !!flip && list.length === 2; C.shown = 0;
  const stage = $('cmp-stage');
  stage.replaceChildren();
  C.videos = []; C.master = null;
  const letters = 'ABCD';
  list.forEach((j, i) => {
    const label = h('span', { class: 'slot-label', title: j.name + ' · ' + j.tier + ' · ' + DIMS.map((d, k) => d.name + ': ' + clip(dimValue(j, k), 80)).join(', ') },
      h('span', { class: 'ab', text: letters[i] }), diffLabel(j, list));
    if (!j.media || !j.media.video) {
      stage.append(h('div', { class: 'slot nofile' }, label, h('div', null, j.media && j.media.pruned ? j.media.pruned : stateOf(j.state)[0] + (j.code ? ': ' + j.code : ''))));
      return;
    }
    const v = h('video', { preload: 'auto', playsinline: true, src: j.media.video, poster: j.media.poster });
    v.muted = C.muted;
    v.fps = j.media.fps || 24;
    stage.append(h('div', { class: 'slot', 'data-i': i }, v, label));
    C.videos.push(v);
    if (!C.master) C.master = v;
  });
  if (C.master) C.master.loop = $('t-loop').checked;
  const n = Math.min(4, Math.max(2, list.length));
  $('cmp-params').className = 'cmp-params n' + n;
  renderParams();
  applyFlip();
  const shared = sharedLabel(list);
  $('cmp-title').textContent = list.length + ' videos' + (shared ? ' of ' + clip(shared, 120) : '') + (C.flip ? ' · A/B flip (tab)' : '');
  for (const v of C.videos) v.playbackRate = +$('t-speed').value;
  $('compare').hidden = false;
  $('cmp-close').focus();
  cancelAnimationFrame(C.raf);
  C.raf = requestAnimationFrame(syncLoop);
}
function applyFlip() {
  const stage = $('cmp-stage');
  const n = Math.min(4, Math.max(2, C.items.length));
  stage.className = 'cmp-stage n' + n + (C.flip ? ' flip' : '');
  Array.from(stage.children).forEach((slot, i) => slot.classList.toggle('shown', i === C.shown));
  $('cmp-flip').classList.toggle('on', C.flip);
  $('cmp-flip').disabled = C.items.length !== 2;
}
function closeCompare() {
  cancelAnimationFrame(C.raf);
  for (const v of C.videos) { v.pause(); v.removeAttribute('src'); v.load(); }
  C.videos = []; C.master = null; C.items = [];
  $('cmp-stage').replaceChildren();
  $('compare').hidden = true;
  const u = focused(); if (u) u.el.focus({ preventScroll: true });
}
function cmpPlaying() { return !!C.master && !C.master.paused; }
function cmpPlay(on) {
  for (const v of C.videos) {
    if (on) { if (v !== C.master) v.currentTime = Math.min(C.master.currentTime, (v.duration || 1e9) - 0.05); const p = v.play(); if (p && p.catch) p.catch(() => {}); }
    else v.pause();
  }
  $('t-play').textContent = on ? '❚❚' : '▶';
}
function cmpSeek(t) {
  for (const v of C.videos) v.currentTime = Math.max(0, Math.min(t, (v.duration || t) - 0.001));
}
function cmpStep(dir) {
  if (!C.master) return;
  cmpPlay(false);
  const fps = C.master.fps || 24;
  cmpSeek(Math.max(0, C.master.currentTime + dir / fps));
}
// One clock: every video follows the master's currentTime.
function syncLoop() {
  const m = C.master;
  if (m) {
    const t = m.currentTime, d = m.duration || 0;
    for (const v of C.videos) {
      if (v === m) continue;
      const end = (v.duration || d || 0) - 0.05;
      const target = Math.max(0, Math.min(t, end));
      if (!m.paused) {
        if (v.paused && target < end && v.readyState >= 2) { const p = v.play(); if (p && p.catch) p.catch(() => {}); }
        if (Math.abs(v.currentTime - target) > 0.12) v.currentTime = target;
      } else if (Math.abs(v.currentTime - target) > 0.02) v.currentTime = target;
      if (v.playbackRate !== m.playbackRate) v.playbackRate = m.playbackRate;
    }
    $('t-time').textContent = fmtClock(t) + ' / ' + fmtClock(d);
    if (d && document.activeElement !== $('t-seek')) $('t-seek').value = String(Math.round((t / d) * 1000));
    $('t-play').textContent = m.paused ? '▶' : '❚❚';
  }
  C.raf = requestAnimationFrame(syncLoop);
}
function renderParams() {
  const box = $('cmp-params');
  box.replaceChildren();
  const items = C.items;
  const others = (i) => items.filter((_, k) => k !== i);
  items.forEach((j, i) => {
    const rows = [];
    const row = (name, value, diff, el) => rows.push(h('tr', { class: diff ? (el ? 'pdiff' : 'diff') : '' }, h('td', { text: name }), h('td', { class: 'pv' }, el || value)));
    const same = (f) => items.every((o) => f(o) === f(items[0]));
    row('', 'ABCD'[i] + ' · ' + diffLabel(j, items), false);
    row('tier', j.tier, !same((o) => o.tier));
    DIMS.forEach((d, k) => row(d.name, clip(dimValue(j, k), 200), !same((o) => o.dims[k])));
    const common = commonWords(others(i).concat([j]));
    row('prompt', '', !same((o) => o.prompt), promptEl(j.prompt, common, 'prompt open'));
    row('status', stateOf(j.state)[0] + (j.code ? ' · ' + j.code : ''), !same((o) => o.state));
    if (!RUN.share) row('credits', fmtCredits(cost(j)) + ' (' + fmtUsd(cost(j)) + ')', !same((o) => cost(o)));
    row('latency', fmtDur(j.latency), false);
    if (j.media) row('video', (j.media.width || '?') + '×' + (j.media.height || '?') + ', ' + fmtDur(j.media.duration) + (j.media.audio ? ', audio' : ', no audio'), false);
    if (j.unit && j.unit.jobs.length > 1) row('repeat', j.sample + ' of ' + j.unit.jobs.length, false);
    if (noteOf(j)) row('note', noteOf(j), false);
    row('job', j.key, false);
    box.append(h('table', { class: 'params' }, h('tbody', null, rows)));
  });
}
function compareKeys(e) {
  switch (e.key) {
    case 'Escape': e.preventDefault(); closeCompare(); return;
    case ' ': e.preventDefault(); cmpPlay(!cmpPlaying()); return;
    case ',': e.preventDefault(); cmpStep(-1); return;
    case '.': e.preventDefault(); cmpStep(1); return;
    case 'Tab':
      if (C.items.length === 2) { e.preventDefault(); if (!C.flip) { C.flip = true; } else { C.shown = 1 - C.shown; } applyFlip(); }
      return;
    case 'm': e.preventDefault(); cmpMute(!C.muted); return;
    default: break;
  }
}
function cmpMute(m) {
  C.muted = m;
  for (const v of C.videos) v.muted = m;
  $('t-mute').setAttribute('aria-pressed', m ? 'true' : 'false');
  $('t-mute').textContent = m ? 'muted' : 'sound on';
}
$('cmp-close').addEventListener('click', closeCompare);
$('cmp-flip').addEventListener('click', () => { if (C.flip) C.shown = 1 - C.shown; C.flip = true; applyFlip(); });
$('cmp-flip').addEventListener('dblclick', () => { C.flip = false; applyFlip(); });
$('t-play').addEventListener('click', () => cmpPlay(!cmpPlaying()));
$('t-back').addEventListener('click', () => cmpStep(-1));
$('t-fwd').addEventListener('click', () => cmpStep(1));
$('t-seek').addEventListener('input', (e) => { if (C.master && C.master.duration) cmpSeek((+e.target.value / 1000) * C.master.duration); });
$('t-loop').addEventListener('change', (e) => { if (C.master) C.master.loop = e.target.checked; });
$('t-speed').addEventListener('change', (e) => { for (const v of C.videos) v.playbackRate = +e.target.value; });
$('t-mute').addEventListener('click', () => cmpMute(!C.muted));
