// ------------------------------------------------------------------ playing on cards

const live = []; // media boxes holding a <video>
let hoverBox = null, hoverTimer = 0;
function startVideo(box, sticky) {
  const j = jobOfBox(box);
  if (!j || !j.media || !j.media.video) return null;
  let v = box.querySelector('video');
  if (!v) {
    v = h('video', { preload: 'none', playsinline: true, src: j.media.video, poster: j.media.poster });
    v.muted = S.muted; v.loop = S.loop;
    box.append(v);
    live.push(box);
    for (let i = 0; live.length > MAX_LIVE && i < live.length; ) {
      if (live[i] === box || live[i] === hoverBox) { i++; continue; }
      stopVideo(live[i], true);
    }
  }
  if (sticky) box.classList.add('sticky');
  box.classList.add('playing');
  const p = v.play();
  if (p && p.catch) p.catch(() => { /* interrupted by a pause: fine */ });
  return v;
}
function stopVideo(box, remove) {
  const v = box.querySelector('video');
  box.classList.remove('playing', 'sticky');
  if (!v) return;
  v.pause();
  if (remove) {
    v.removeAttribute('src'); v.load(); v.remove();
    const i = live.indexOf(box);
    if (i >= 0) live.splice(i, 1);
  }
}
function dropVideos(root) { for (const box of root.querySelectorAll('.media.playing, .media video')) stopVideo(box.closest('.media'), true); }
function stopAllVideos() { while (live.length) stopVideo(live[0], true); }
function togglePlay(box) {
  const v = box.querySelector('video');
  if (v && !v.paused && box.classList.contains('sticky')) { v.pause(); box.classList.remove('playing', 'sticky'); return; }
  startVideo(box, true);
}
function leaveHover() {
  clearTimeout(hoverTimer);
  if (hoverBox && !hoverBox.classList.contains('sticky')) stopVideo(hoverBox, true);
  hoverBox = null;
}
grid.addEventListener('mouseover', (e) => {
  const box = e.target.closest('.media[data-k]');
  if (box === hoverBox) return;
  leaveHover();
  if (!box) return;
  hoverBox = box;
  hoverTimer = setTimeout(() => { if (hoverBox === box) startVideo(box, false); }, 140);
});
grid.addEventListener('mouseleave', leaveHover);
