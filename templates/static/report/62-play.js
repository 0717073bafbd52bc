// ------------------------------------------------------------------ playing on cards

const live = []; // media boxes holding a <video>
let hoverBox = null, hoverTimer = 0; // hoverBox: a media box, or a promoted card's .pair
// A promoted card plays its two renders side by side: hovering or clicking either plays both,
// the standard render following the fast one's clock.
function boxesOf(target) {
  if (target.classList.contains('pair')) return Array.from(target.querySelectorAll('.media[data-k]'));
  const pair = target.parentElement && target.parentElement.classList.contains('pair') ? target.parentElement : null;
  return pair ? Array.from(pair.querySelectorAll('.media[data-k]')) : [target];
}
function startVideo(box, sticky) {
  const boxes = boxesOf(box);
  let first = null;
  for (const b of boxes) {
    const v = startOne(b, sticky, boxes);
    if (v && !first) first = v;
    else if (v && first) followClock(v, first);
  }
  return first;
}
function startOne(box, sticky, keep) {
  const j = jobOfBox(box);
  if (!j || !j.media || !j.media.video) return null;
  let v = box.querySelector('video');
  if (!v) {
    v = h('video', { preload: 'none', playsinline: true, src: j.media.video, poster: j.media.poster });
    v.muted = S.muted; v.loop = S.loop;
    box.append(v);
    live.push(box);
    for (let i = 0; live.length > MAX_LIVE && i < live.length; ) {
      if (keep.indexOf(live[i]) >= 0 || live[i] === hoverBox || (hoverBox && hoverBox.contains(live[i]))) { i++; continue; }
      stopVideo(live[i], true);
    }
  }
  if (sticky) box.classList.add('sticky');
  box.classList.add('playing');
  const p = v.play();
  if (p && p.catch) p.catch(() => { /* interrupted by a pause: fine */ });
  return v;
}
// v keeps to the master's time (both loop; the shorter one waits at its end).
function followClock(v, master) {
  if (v.follows === master) return;
  v.follows = master;
  const sync = () => {
    if (v.follows !== master || !v.isConnected) {
      for (const ev of ['timeupdate', 'pause', 'play']) master.removeEventListener(ev, sync);
      return;
    }
    const end = (v.duration || Infinity) - 0.05;
    const target = Math.min(master.currentTime, end);
    if (Math.abs(v.currentTime - target) > 0.12) v.currentTime = target;
    if (master.paused !== v.paused) {
      if (master.paused) v.pause();
      else { const p = v.play(); if (p && p.catch) p.catch(() => {}); }
    }
  };
  for (const ev of ['timeupdate', 'pause', 'play']) master.addEventListener(ev, sync);
}
function stopVideo(box, remove) {
  const v = box.querySelector('video');
  box.classList.remove('playing', 'sticky');
  if (!v) return;
  v.pause();
  if (remove) {
    v.follows = null;
    v.removeAttribute('src'); v.load(); v.remove();
    const i = live.indexOf(box);
    if (i >= 0) live.splice(i, 1);
  }
}
function dropVideos(root) { for (const box of root.querySelectorAll('.media.playing, .media video')) stopVideo(box.closest('.media'), true); }
function stopAllVideos() { while (live.length) stopVideo(live[0], true); }
function togglePlay(box) {
  const boxes = boxesOf(box);
  const v = boxes[0].querySelector('video') || box.querySelector('video');
  if (v && !v.paused && boxes[0].classList.contains('sticky')) {
    for (const b of boxes) { const w = b.querySelector('video'); if (w) w.pause(); b.classList.remove('playing', 'sticky'); }
    return;
  }
  startVideo(box, true);
}
function leaveHover() {
  clearTimeout(hoverTimer);
  if (hoverBox) for (const b of boxesOf(hoverBox)) if (!b.classList.contains('sticky')) stopVideo(b, true);
  hoverBox = null;
}
grid.addEventListener('mouseover', (e) => {
  const media = e.target.closest('.media[data-k]');
  const box = media ? (e.target.closest('.pair') || media) : null;
  if (box === hoverBox) return;
  leaveHover();
  if (!box) return;
  hoverBox = box;
  hoverTimer = setTimeout(() => { if (hoverBox === box) startVideo(media, false); }, 140);
});
grid.addEventListener('mouseleave', leaveHover);
