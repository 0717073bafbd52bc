// ------------------------------------------------------------------ cards

function problemBox(j) {
  const st = stateOf(j.state);
  const label = j.isParent && j.state === 'missing' ? 'not found' : st[0];
  const box = h('div', { class: 'problem tone-' + (j.state === 'missing' ? 'wait' : st[1]) }, h('b', { text: label }));
  if (RUN.share) {
    // a client's page: the state alone, without credits or the commands that settle it
  } else if (j.state === 'unknown') {
    box.append(h('div', { class: 'err-msg', text: 'Create outcome unknown: up to ' + fmtCredits(j.estimate) +
      ' credits may have been charged. Settle it with:' }), h('code', { class: 'cmd', text: 'runner resolve ' + RUN.id }));
  } else if (j.state === 'expired') {
    box.append(h('div', { class: 'err-msg', text: 'Paid ' + fmtCredits(j.credits) +
      ' credits; the result expired before it was downloaded.' }));
  } else if (st[1] === 'wait' && j.state !== 'missing') {
    box.append(h('div', { class: 'err-msg', text: RUN.live ? 'Not finished yet: this page updates itself while the run goes.'
      : 'Not finished when the report was written. `runner resume ' + RUN.id + '` continues.' }));
  } else if (j.state === 'done') {
    box.append(h('div', { class: 'err-msg', text: 'No video file in media/.' }));
  }
  if (j.code && j.state !== 'unknown') box.append(h('code', { text: j.code }));
  if (j.message && j.state !== 'expired') box.append(h('div', { class: 'err-msg', text: clip(j.message, 2000) }));
  return box;
}
function prunedBox(j) {
  const box = h('div', { class: 'media pruned', title: j.media.pruned });
  if (j.media.poster) box.append(h('img', { src: j.media.poster, loading: 'lazy', decoding: 'async', alt: '' }));
  box.append(h('span', { class: 'badge-b', text: j.media.pruned }));
  return box;
}
function mediaBox(j) {
  if (!j.media) return h('div', { class: 'media' }, problemBox(j));
  if (j.media.pruned) return prunedBox(j);
  const box = h('div', { class: 'media', 'data-k': boxKey(j), title: 'Hover to preview, click to play' });
  if (j.media.poster) box.append(h('img', { src: j.media.poster, loading: 'lazy', decoding: 'async', alt: '' }));
  if (j.media.duration) box.append(h('span', { class: 'badge-r', text: j.media.duration.toFixed(1) + ' s' }));
  if (j.reused) box.append(h('span', { class: 'badge-b', title: 'Reused from run ' + j.reused + ' (not paid again)', text: 'reused' }));
  box.append(h('span', { class: 'play-hint', text: '▶' }));
  return box;
}
function pairBox(j) {
  const p = j.parent;
  const left = mediaBox(p), right = mediaBox(j);
  left.append(h('span', { class: 'pair-label', text: p.tier + ' · ' + fmtCredits(cost(p)) + ' cr' }));
  right.append(h('span', { class: 'pair-label std', text: j.tier + ' · ' + fmtCredits(cost(j)) + ' cr' }));
  return h('div', { class: 'pair' }, left, right);
}
function stackEl(u) {
  if (u.jobs.length < 2) return null;
  const n = u.jobs.length;
  const el = h('div', { class: 'stack' });
  const tally = {};
  u.jobs.forEach((j, k) => {
    const tone = stateOf(j.state)[1];
    const label = stateOf(j.state)[0];
    tally[label] = (tally[label] || 0) + 1;
    el.append(h('button', { type: 'button', 'data-k': k, 'aria-pressed': k === u.cur ? 'true' : 'false',
      class: (tone === 'bad' || tone === 'warn' ? 's-bad' : '') + (starOf(j) === 1 ? ' s-star' : ''),
      title: 'Repeat ' + (k + 1) + ' of ' + n + ' (' + label + ')', text: (k + 1) + '/' + n }));
  });
  const parts = Object.keys(tally).map((k) => tally[k] + ' ' + k);
  el.append(h('span', { class: 'consistency', text: Object.keys(tally).length === 1 ? 'all ' + parts[0].replace(/^\d+ /, '') : parts.join(' · ') }));
  return el;
}
function footEl(u, j, compact) {
  const st = stateOf(j.state);
  // a promoted pair shows each cost on its own pane
  const costText = j.parent ? 'both ' + fmtCredits((cost(j.parent) || 0) + (cost(j) || 0)) + ' cr' : fmtCredits(cost(j)) + ' cr';
  const late = compact || j.latency === null ? '' : fmtDur(j.latency);
  const foot = h('div', { class: 'foot' },
    RUN.share ? h('span', { class: 'cost', title: 'generation latency', text: late }) // a client's page: no costs
      : h('span', { class: 'cost', title: (j.credits === null ? 'estimated ' : '') + fmtUsd(cost(j)) + (compact ? '' : ' · generation latency ' + fmtDur(j.latency)),
        text: costText + (late ? ' · ' + late : '') }),
    j.state !== 'done' ? h('span', { class: 'st tone-' + st[1], text: st[0] }) : null,
    j.mismatches ? h('span', { class: 'flag', title: 'Differs from the request: ' + j.mismatches, text: '⚠' }) : null,
    h('span', { class: 'spacer' }),
    j.parent ? h('button', { type: 'button', class: 'btn icon abflip', title: 'A/B flip ' + j.parent.tier + ' against ' + j.tier, text: 'A/B' }) : null,
    h('button', { type: 'button', class: 'tog star', 'aria-pressed': starOf(j) === 1 ? 'true' : 'false', title: 'Star (s)', text: '★' }),
    h('button', { type: 'button', class: 'tog rej', 'aria-pressed': starOf(j) === -1 ? 'true' : 'false', title: 'Reject (x)', text: '✕' }));
  return foot;
}
// A card is as wide as its video: the media box keeps the video's aspect ratio, and the size
// slider sets the picture's area (a 16:9 card is S.size wide, a 9:16 one as large and narrower;
// the contact sheet is smaller). A card without a video takes its cell's usual shape.
const WIDE = 16 / 9;
function aspectOf(j, cellAr) {
  const m = j.media;
  if (m && m.width && m.height) return m.width / m.height;
  return cellAr || WIDE;
}
function cardAspect(u, cellAr) { return aspectOf(u.jobs[u.cur], cellAr); }
function cardSize(ar) {
  const base = S.view === 'sheet' ? Math.round(S.size * 0.68) : S.size;
  return Math.max(S.view === 'sheet' ? 70 : 110, Math.round(base * Math.sqrt(ar / WIDE)));
}
// Width of the card of u at the scale s (a promoted pair holds two pictures side by side).
function cardWidth(u, cellAr, s) {
  const w = cardSize(cardAspect(u, cellAr)) * (s || 1);
  return Math.round(u.jobs[u.cur].parent ? 2 * w + 2 : w);
}
function sizeCard(el, u, cellAr, s) {
  const ar = cardAspect(u, cellAr);
  el.style.setProperty('--ar', ar.toFixed(4));
  el.style.setProperty('--pf', ((u.jobs[u.cur].parent ? 2 : 1) * Math.sqrt(ar / WIDE)).toFixed(3));
  el.style.width = cardWidth(u, cellAr, s) + 'px';
}
function fillCard(el, u, ri, ci) {
  const j = u.jobs[u.cur];
  const s = starOf(j);
  el.dataset.key = j.key;
  if (L && L.cellAr) sizeCard(el, u, L.cellAr[ri + ':' + ci], L.scale);
  el.setAttribute('aria-label', clip(j.name, 80) + ', ' + stateOf(j.state)[0] + (s === 1 ? ', starred' : s === -1 ? ', rejected' : ''));
  el.classList.toggle('starred', s === 1);
  el.classList.toggle('rejected', s === -1);
  const kids = [];
  kids.push(j.parent ? pairBox(j) : mediaBox(j));
  const inCompare = S.compare.indexOf(u.id) >= 0;
  el.classList.toggle('comparing', inCompare);
  kids.push(h('label', { class: 'cmp', title: 'Add to compare (c)' }, h('input', { type: 'checkbox', checked: inCompare }), 'compare'));
  if (S.view === 'sheet' && j.media && j.media.strip) kids.push(h('img', { class: 'strip', src: j.media.strip, loading: 'lazy', alt: '' }));
  const body = h('div', { class: 'body' });
  const dims = chipDims(ri, ci);
  if (dims.length) body.append(h('div', { class: 'chips' }, dims.map((d) => chip(d, u.dims[d], false))));
  if (S.view !== 'sheet') body.append(promptEl(j.prompt, rowCommon(ri)));
  add(body, stackEl(u));
  body.append(footEl(u, j, S.view === 'sheet'));
  const note = noteOf(j);
  if (note) body.append(h('div', { class: 'note-line', title: 'Edit note (n)', text: note }));
  add(body, votesEl(j)); // everyone's votes and notes (85-picks.js)
  kids.push(body);
  fill(el, kids);
  el.dataset.ri = ri; el.dataset.ci = ci;
}
function cardEl(u, ri, ci) {
  const el = h('article', { class: 'card', tabindex: S.focus === u.id ? '0' : '-1', 'data-u': u.id });
  fillCard(el, u, ri, ci);
  u.el = el;
  return el;
}
// Picks and compare change a card in place (a playing video keeps playing).
function refreshPicks(u) {
  const el = u.el;
  if (!el || !el.isConnected) return;
  const j = u.jobs[u.cur];
  const s = starOf(j);
  el.classList.toggle('starred', s === 1);
  el.classList.toggle('rejected', s === -1);
  el.setAttribute('aria-label', clip(j.name, 80) + ', ' + stateOf(j.state)[0] + (s === 1 ? ', starred' : s === -1 ? ', rejected' : ''));
  for (const b of el.querySelectorAll('.tog.star')) b.setAttribute('aria-pressed', s === 1 ? 'true' : 'false');
  for (const b of el.querySelectorAll('.tog.rej')) b.setAttribute('aria-pressed', s === -1 ? 'true' : 'false');
  for (const b of el.querySelectorAll('.stack button')) b.classList.toggle('s-star', starOf(u.jobs[+b.dataset.k]) === 1);
  const note = noteOf(j);
  let line = el.querySelector('.note-line');
  if (note && !line) {
    line = h('div', { class: 'note-line', title: 'Edit note (n)' });
    (S.view === 'list' ? el.lastElementChild : el.querySelector('.body')).append(line);
  }
  if (note) line.textContent = note; else if (line) line.remove();
  const votes = el.querySelector('.votes'), fresh = votesEl(j);
  if (votes) { if (fresh) votes.replaceWith(fresh); else votes.remove(); }
  else if (fresh && S.view !== 'list') el.querySelector('.body').append(fresh);
}
function refreshCompare(u) {
  const el = u.el;
  if (!el || !el.isConnected) return;
  const on = S.compare.indexOf(u.id) >= 0;
  el.classList.toggle('comparing', on);
  for (const box of el.querySelectorAll('.cmp input')) box.checked = on;
}
function refreshUnit(u) {
  const el = u.el;
  if (!el || !el.isConnected) return;
  dropVideos(el);
  view().refresh(el, u);
}
