// ------------------------------------------------------------------ duels: which value wins
//
// Two finished variants that differ in exactly one dimension, side by side and in sync; the
// reviewer says A, B or tie. The next duel is the one that teaches the most (the dimension
// with the fewest judgements, then its least compared pair of values). The side panel ranks
// each dimension's values with a Bradley–Terry fit and says "not yet" until the leader's lead
// is significant. Duels live in localStorage under the run id, like picks, and travel as
// duels.csv (docs/report-page.md, "Duels").

const DUELS_KEY = 'runner-duels:' + RUN.id;
const DUEL_COLUMNS = ['run_id', 'reviewer', 'dimension', 'a_job_key', 'b_job_key', 'a_value', 'b_value', 'winner', 'at'];
const DUEL_PRIOR = 0.25; // precision of the prior on log-strengths (sd 2): few duels stay near even
const duels = []; // {r: reviewer, d: dimension name, a, b: job keys, av, bv: values, w: 'a'|'b'|'tie', at: ISO time}
// the duel on screen: {d: dim index, u: [unit A, unit B], k: [sample index A, B]}
const D = { cur: null, only: '', raf: 0, videos: [], stage: null, clearArmed: 0 };

(function loadDuels() {
  try {
    const saved = JSON.parse(localStorage.getItem(DUELS_KEY) || 'null');
    if (saved && Array.isArray(saved.duels)) for (const x of saved.duels) { const ok = duelChecked(x); if (ok) duels.push(ok); }
  } catch (e) { /* unreadable storage: start empty */ }
})();
function duelChecked(x) {
  if (!x || typeof x !== 'object') return null;
  const a = byKey.get(String(x.a)), b = byKey.get(String(x.b));
  if (!a || !b || a.isParent || b.isParent || dimIndex[x.d] === undefined) return null;
  if (x.w !== 'a' && x.w !== 'b' && x.w !== 'tie') return null;
  const d = dimIndex[x.d];
  return { r: typeof x.r === 'string' ? x.r : '', d: x.d, a: a.key, b: b.key, av: dimValue(a, d), bv: dimValue(b, d), w: x.w,
    at: typeof x.at === 'string' ? x.at : '' };
}
function saveDuels() {
  try { localStorage.setItem(DUELS_KEY, JSON.stringify({ v: 1, run: RUN.id, duels: duels })); }
  catch (e) { toast('Duels could not be saved in this browser: ' + e.message); }
}

// ------------------------------------------------------------------ which duels exist

// A unit can duel when one of its samples has a video; it plays its first such sample.
function duelSamples(u) { return u.jobs.filter((j) => j.media && j.media.video); }
// The dimensions a duel can be about: every varied one but `name` (the row's label).
function duelDims() { return DIMS.map((d, i) => i).filter((i) => DIMS[i].name !== 'name' && DIMS[i].values.length > 1); }
// Pairs of units (of the filtered cards) that differ in dimension d only, by pair of values.
function duelPairs(d) {
  const groups = new Map();
  for (const u of L.vis) {
    if (u.dims[d] < 0 || !duelSamples(u).length) continue;
    const rest = u.dims.map((v, k) => (k === d ? '*' : v)).join('|');
    if (!groups.has(rest)) groups.set(rest, []);
    groups.get(rest).push(u);
  }
  const byValues = new Map(); // 'x|y' (x < y) -> [[unit with x, unit with y], ...]
  for (const list of groups.values()) {
    for (let i = 0; i < list.length; i++) {
      for (let k = i + 1; k < list.length; k++) {
        let p = list[i], q = list[k];
        if (p.dims[d] === q.dims[d]) continue;
        if (p.dims[d] > q.dims[d]) { const t = p; p = q; q = t; }
        const key = p.dims[d] + '|' + q.dims[d];
        if (!byValues.has(key)) byValues.set(key, []);
        byValues.get(key).push([p, q]);
      }
    }
  }
  return byValues;
}
// A small deterministic generator (mulberry32) seeded from the run and the number of duels.
function duelRandom(seed) {
  let s = 0;
  for (let i = 0; i < seed.length; i++) s = (Math.imul(s, 31) + seed.charCodeAt(i)) | 0;
  return function () {
    s = (s + 0x6D2B79F5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
// The duel that teaches the most: the dimension with the fewest judgements, then its pair of
// values compared least, then (at random among the least judged) a pair of variants for them.
function nextDuel() {
  const dims = duelDims().filter((d) => !D.only || DIMS[d].name === D.only);
  const perDim = new Map(), perValues = new Map(), perUnits = new Map();
  for (const x of duels) {
    perDim.set(x.d, (perDim.get(x.d) || 0) + 1);
    const vk = x.d + '\u0000' + [x.av, x.bv].sort().join('\u0000');
    perValues.set(vk, (perValues.get(vk) || 0) + 1);
    const a = byKey.get(x.a), b = byKey.get(x.b);
    const uk = [a.unit.id, b.unit.id].sort((p, q) => p - q).join('|');
    perUnits.set(uk, (perUnits.get(uk) || 0) + 1);
  }
  let best = null;
  for (const d of dims) {
    const pairs = duelPairs(d);
    if (!pairs.size) continue;
    const n = perDim.get(DIMS[d].name) || 0;
    if (best && n >= best.n) continue;
    best = { d: d, n: n, pairs: pairs };
  }
  if (!best) return null;
  const d = best.d;
  let values = null, least = Infinity;
  for (const [key, list] of best.pairs) {
    const vs = key.split('|').map((v) => DIMS[d].values[+v]);
    const n = perValues.get(DIMS[d].name + '\u0000' + vs.sort().join('\u0000')) || 0;
    if (n < least) { least = n; values = list; }
  }
  const count = (pq) => perUnits.get([pq[0].id, pq[1].id].sort((p, q) => p - q).join('|')) || 0;
  const fewest = Math.min.apply(null, values.map(count));
  const pool = values.filter((pq) => count(pq) === fewest);
  const rnd = duelRandom(RUN.id + ':' + duels.length);
  const pq = pool[Math.floor(rnd() * pool.length)];
  const swap = rnd() < 0.5; // either value may be on the left
  const u = swap ? [pq[1], pq[0]] : [pq[0], pq[1]];
  return { d: d, u: u, k: u.map((x) => x.jobs.indexOf(duelSamples(x)[0])) };
}

// ------------------------------------------------------------------ judging

function duelJob(side) { const c = D.cur; return c.u[side].jobs[c.k[side]]; }
function judge(w) {
  const c = D.cur;
  if (!c) return;
  Report.needReviewer((name) => {
    if (D.cur !== c) return;
    const a = duelJob(0), b = duelJob(1);
    duels.push({ r: name || '', d: DIMS[c.d].name, a: a.key, b: b.key, av: dimValue(a, c.d), bv: dimValue(b, c.d), w: w,
      at: new Date().toISOString() });
    saveDuels();
    D.cur = null;
    drawDuel();
  });
}
function skipDuel() {
  if (!D.cur) return;
  // move this pair to the back of its queue: the next pick among equals differs
  const c = D.cur, next = nextDuelAvoiding(c);
  D.cur = next; drawDuel();
}
function nextDuelAvoiding(c) {
  const pairs = duelPairs(c.d);
  const flat = [];
  for (const list of pairs.values()) for (const pq of list) flat.push(pq);
  if (flat.length < 2) return nextDuel();
  const i = flat.findIndex((pq) => (pq[0] === c.u[0] && pq[1] === c.u[1]) || (pq[0] === c.u[1] && pq[1] === c.u[0]));
  const pq = flat[(i + 1) % flat.length];
  return { d: c.d, u: pq, k: pq.map((x) => x.jobs.indexOf(duelSamples(x)[0])) };
}
function undoDuel() {
  const me = Report.reviewer() || '';
  for (let i = duels.length - 1; i >= 0; i--) {
    if (duels[i].r !== me) continue;
    const x = duels.splice(i, 1)[0];
    saveDuels();
    const a = byKey.get(x.a), b = byKey.get(x.b);
    D.cur = { d: dimIndex[x.d], u: [a.unit, b.unit], k: [a.unit.jobs.indexOf(a), b.unit.jobs.indexOf(b)] };
    drawDuel();
    toast('Took back the last duel: ' + x.av + ' vs ' + x.bv);
    return;
  }
  toast('No duel of yours to take back');
}
function stepSample(side, dir) {
  const c = D.cur;
  if (!c) return;
  const u = c.u[side], ok = duelSamples(u);
  const i = ok.indexOf(u.jobs[c.k[side]]);
  const next = ok[(i + dir + ok.length) % ok.length];
  c.k[side] = u.jobs.indexOf(next);
  drawDuel();
}

// ------------------------------------------------------------------ statistics

// Bradley–Terry: value i beats value j with probability 1 / (1 + exp(s_j - s_i)). The
// strengths s maximise the likelihood of the duels (a tie is half a win for each side) plus
// a normal prior (mean 0, sd 2) that keeps them finite with few duels; Newton's method. The
// 95 % intervals come from the curvature at the optimum (covariance = inverse Hessian).
function bradleyTerry(k, games) {
  const s = new Array(k).fill(0);
  let cov = null;
  for (let it = 0; it < 60; it++) {
    const g = s.map((x) => -DUEL_PRIOR * x);
    const H = s.map((x, i) => s.map((y, j) => (i === j ? DUEL_PRIOR : 0)));
    for (const [i, j, wi] of games) { // wi: value i's share of the win (1, 0.5 or 0)
      const p = 1 / (1 + Math.exp(s[j] - s[i])), q = p * (1 - p);
      g[i] += wi - p; g[j] -= wi - p;
      H[i][i] += q; H[j][j] += q; H[i][j] -= q; H[j][i] -= q;
    }
    cov = invert(H);
    let step = 0;
    const delta = s.map((x, i) => { let t = 0; for (let j = 0; j < k; j++) t += cov[i][j] * g[j]; return t; });
    for (let i = 0; i < k; i++) { const t = Math.max(-2, Math.min(2, delta[i])); s[i] += t; step = Math.max(step, Math.abs(t)); }
    if (step < 1e-9) break;
  }
  return { s: s, cov: cov };
}
function invert(M) {
  const n = M.length, A = M.map((row, i) => row.concat(row.map((x, j) => (i === j ? 1 : 0))));
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
    const t = A[c]; A[c] = A[p]; A[p] = t;
    const piv = A[c][c];
    for (let j = 0; j < 2 * n; j++) A[c][j] /= piv;
    for (let r = 0; r < n; r++) {
      if (r === c || !A[r][c]) continue;
      const f = A[r][c];
      for (let j = 0; j < 2 * n; j++) A[r][j] -= f * A[c][j];
    }
  }
  return A.map((row) => row.slice(n));
}
const logistic = (x) => 1 / (1 + Math.exp(-x));
// One dimension's ranking: values (with duels or stars) by strength, each with its chance to
// beat an average value (95 % interval), its wins (ties half) and judgements, its stars, and
// whether the leader's lead over the runner-up is significant.
function duelRanking(d) {
  const name = DIMS[d].name, vals = DIMS[d].values;
  const games = [], wins = new Array(vals.length).fill(0), n = new Array(vals.length).fill(0);
  for (const x of duels) {
    if (x.d !== name) continue;
    const i = vals.indexOf(x.av), j = vals.indexOf(x.bv);
    if (i < 0 || j < 0 || i === j) continue;
    const wi = x.w === 'a' ? 1 : x.w === 'b' ? 0 : 0.5;
    games.push([i, j, wi]); wins[i] += wi; wins[j] += 1 - wi; n[i]++; n[j]++;
  }
  const stars = new Array(vals.length).fill(0);
  for (const j of starred()) if (j.dims[d] >= 0) stars[j.dims[d]] += votesOf(j).length; // one per reviewer, as the picks tally
  const fit = bradleyTerry(vals.length, games);
  // Strengths relative to their mean (an average value), with the covariance of those: only
  // differences are measured, so the common level (fixed by the prior alone) drops out.
  const k = vals.length, mean = fit.s.reduce((t, x) => t + x, 0) / k;
  const rm = fit.cov.map((row) => row.reduce((t, x) => t + x, 0) / k), tm = rm.reduce((t, x) => t + x, 0) / k;
  const rows = vals.map((v, i) => {
    const c = fit.s[i] - mean, se = Math.sqrt(Math.max(0, fit.cov[i][i] - 2 * rm[i] + tm));
    return { i: i, value: v, s: c, lo: logistic(c - 1.96 * se), hi: logistic(c + 1.96 * se),
      p: logistic(c), wins: wins[i], n: n[i], stars: stars[i] };
  }).filter((r) => r.n || r.stars);
  rows.sort((a, b) => b.s - a.s || b.stars - a.stars || a.i - b.i);
  // The leader leads when the 95 % interval of its difference to the runner-up excludes 0;
  // beat: the chance it beats the runner-up in a duel, with that interval.
  let lead = false, even = true, beat = null;
  if (rows.length > 1 && rows[0].n && rows[1].n) {
    const a = rows[0].i, b = rows[1].i;
    const diff = fit.s[a] - fit.s[b], se = Math.sqrt(Math.max(0, fit.cov[a][a] + fit.cov[b][b] - 2 * fit.cov[a][b]));
    lead = diff - 1.96 * se > 0;
    even = diff < 1e-6;
    beat = { other: rows[1].value, p: logistic(diff), lo: logistic(diff - 1.96 * se), hi: logistic(diff + 1.96 * se) };
  }
  return { name: name, rows: rows, games: games.length, lead: lead, even: even, beat: beat };
}

// ------------------------------------------------------------------ drawing

function fmtWins(w) { return w % 1 ? w.toFixed(1) : String(w); }
function pct(x) { return Math.round(100 * x) + ' %'; }
function renderDuels() {
  if (D.cur && !(L.vis.indexOf(D.cur.u[0]) >= 0 && L.vis.indexOf(D.cur.u[1]) >= 0 && (!D.only || DIMS[D.cur.d].name === D.only))) D.cur = null;
  const main = h('div', { class: 'duel-main' });
  const side = h('aside', { class: 'duel-side', 'aria-label': 'Which value wins' });
  grid.append(h('div', { class: 'duel' }, main, side));
  drawDuel();
}
function duelStop() {
  cancelAnimationFrame(D.raf); D.raf = 0;
  for (const v of D.videos) { v.pause(); v.removeAttribute('src'); v.load(); }
  D.videos = [];
}
function drawDuel() {
  const main = grid.querySelector('.duel-main');
  if (!main) return;
  duelStop();
  if (!D.cur) D.cur = nextDuel();
  const c = D.cur;
  const dims = duelDims();
  const only = h('select', { class: 'duel-only', 'aria-label': 'Duel on' },
    h('option', { value: '', text: 'least judged' }), dims.map((i) => h('option', { value: DIMS[i].name, text: DIMS[i].name })));
  only.value = D.only;
  only.addEventListener('change', () => { D.only = only.value; D.cur = null; drawDuel(); });
  const head = h('div', { class: 'duel-head' }, h('b', { text: 'Which is better?' }),
    c ? h('span', { class: 'duel-about' }, DIMS[c.d].name + ': ', h('bdi', { text: clip(dimValue(c.u[0], c.d), 60) }), ' vs ',
      h('bdi', { text: clip(dimValue(c.u[1], c.d), 60) })) : null,
    h('span', { class: 'grow-space' }), h('label', { class: 'muted' }, 'duel on ', only));
  if (!c) {
    fill(main, head, h('p', { class: 'muted empty-note', text: dims.length
      ? 'No duel possible here: it needs two finished videos that differ in one dimension only (same everything else). Clear the filters, or wait for more results.'
      : 'No duel possible: this run varies no dimension besides the name.' }));
    drawDuelSide();
    return;
  }
  const slots = [0, 1].map((side) => {
    const j = duelJob(side), u = c.u[side], ok = duelSamples(u);
    const v = h('video', { preload: 'auto', playsinline: true, src: j.media.video, poster: j.media.poster });
    v.muted = S.muted; v.loop = S.loop;
    D.videos.push(v);
    const same = DIMS.map((d, k) => (k === c.d || d.values.length < 2 ? null : d.name + ' ' + clip(dimValue(j, k), 40))).filter(Boolean);
    const step = ok.length > 1 ? h('span', { class: 'duel-samples' },
      h('button', { type: 'button', class: 'btn icon', 'data-step': side + ':-1', title: 'Previous sample' }, '‹'),
      h('span', { text: 'sample ' + (ok.indexOf(j) + 1) + ' of ' + ok.length }),
      h('button', { type: 'button', class: 'btn icon', 'data-step': side + ':1', title: 'Next sample' }, '›')) : null;
    return h('figure', { class: 'duel-slot', 'data-side': side ? 'b' : 'a', 'data-value': dimValue(j, c.d), 'data-key': j.key },
      v, h('figcaption', null, h('span', { class: 'ab', text: side ? 'B' : 'A' }), h('b', null, h('bdi', { text: clip(dimValue(j, c.d), 80) })),
        ' ', h('span', { class: 'muted', text: same.join(' · ') }), step));
  });
  const play = h('button', { type: 'button', class: 'btn icon play duel-play', title: 'Play / pause (space)', text: '❚❚' });
  const seek = h('input', { type: 'range', class: 'duel-seek', min: '0', max: '1000', step: '1', value: '0', 'aria-label': 'Seek' });
  const time = h('span', { class: 't-time', text: '0:00.0' });
  const btn = (w, text, key) => h('button', { type: 'button', class: 'btn' + (w === 'tie' ? '' : ' primary'), 'data-judge': w, title: key }, text);
  fill(main, head, h('div', { class: 'duel-stage' }, slots),
    h('div', { class: 'duel-transport' }, play, time, seek),
    h('div', { class: 'duel-actions' }, btn('a', 'A is better', '1 or ←'), btn('tie', 'Tie', '0 or ↓'), btn('b', 'B is better', '2 or →'),
      h('span', { class: 'grow-space' }),
      h('button', { type: 'button', class: 'btn subtle', 'data-act': 'skip', title: 'Another pair (n)' }, 'Skip'),
      h('button', { type: 'button', class: 'btn subtle', 'data-act': 'undo', title: 'Take back your last duel (u)' }, 'Undo'),
      h('span', { class: 'muted small', text: 'keys: 1 / ← A · 2 / → B · 0 / ↓ tie · space play · n skip · u undo' })));
  const master = D.videos[0];
  play.addEventListener('click', () => duelPlay(master.paused));
  seek.addEventListener('input', () => { const d = master.duration || 0; for (const v of D.videos) v.currentTime = Math.min((+seek.value / 1000) * d, (v.duration || d) - 0.001); });
  for (const v of D.videos) { const p = v.play(); if (p && p.catch) p.catch(() => {}); }
  const sync = () => {
    if (!master.isConnected) { D.raf = 0; return; }
    const t = master.currentTime, d = master.duration || 0;
    for (const v of D.videos) {
      if (v === master) continue;
      const target = Math.max(0, Math.min(t, (v.duration || d) - 0.05));
      if (!master.paused && v.paused && v.readyState >= 2) { const p = v.play(); if (p && p.catch) p.catch(() => {}); }
      if (master.paused && !v.paused) v.pause();
      if (Math.abs(v.currentTime - target) > (master.paused ? 0.02 : 0.12)) v.currentTime = target;
    }
    time.textContent = fmtClock(t) + ' / ' + fmtClock(d);
    if (d && document.activeElement !== seek) seek.value = String(Math.round((t / d) * 1000));
    play.textContent = master.paused ? '▶' : '❚❚';
    D.raf = requestAnimationFrame(sync);
  };
  D.raf = requestAnimationFrame(sync);
  drawDuelSide();
}
function duelPlay(on) {
  for (const v of D.videos) { if (on) { const p = v.play(); if (p && p.catch) p.catch(() => {}); } else v.pause(); }
}
function drawDuelSide() {
  const side = grid.querySelector('.duel-side');
  if (!side) return;
  const me = Report.reviewer() || '';
  const mine = duels.filter((x) => x.r === me).length;
  const blocks = duelDims().map((d) => {
    const r = duelRanking(d);
    const top = r.rows[0];
    let verdict;
    if (!r.games) verdict = h('p', { class: 'verdict', 'data-state': 'none', text: 'No duels yet.' });
    else if (r.lead) {
      verdict = h('p', { class: 'verdict', 'data-state': 'lead' }, h('bdi', { text: clip(top.value, 60) }),
        ' wins, ' + fmtWins(top.wins) + ' of ' + top.n + ' duels: it would beat ', h('bdi', { text: clip(r.beat.other, 60) }),
        ' in about ' + pct(r.beat.p) + ' of duels (95 % interval ' + pct(r.beat.lo) + '–' + pct(r.beat.hi) + ').');
    } else if (r.even || !top || !top.n) {
      verdict = h('p', { class: 'verdict', 'data-state': 'not-yet' }, h('b', { text: 'Not yet: ' }), 'no value is ahead so far.');
    } else {
      verdict = h('p', { class: 'verdict', 'data-state': 'not-yet' }, h('b', { text: 'Not yet: ' }), h('bdi', { text: clip(top.value, 60) }),
        ' is ahead (' + fmtWins(top.wins) + ' of ' + top.n + '), but its lead could be chance. More duels will tell.');
    }
    const rows = r.rows.map((x, i) => h('tr', { 'data-value': x.value, class: i === 0 && r.lead ? 'lead' : '' },
      h('td', { class: 'v' }, h('bdi', { text: clip(x.value, 60) })),
      h('td', { class: 'num', title: 'chance to beat an average value, 95 % interval' },
        x.n ? pct(x.p) + ' ' : '–', x.n ? h('span', { class: 'muted', text: '(' + pct(x.lo) + '–' + pct(x.hi) + ')' }) : null),
      h('td', { class: 'num', text: fmtWins(x.wins) + ' of ' + x.n }),
      h('td', { class: 'num', title: 'starred cards with this value', text: '★ ' + x.stars })));
    return h('section', { class: 'duel-rank', 'data-dim': r.name },
      h('h4', null, h('bdi', { text: r.name }), h('span', { class: 'muted', text: ' · ' + r.games + ' duel' + (r.games === 1 ? '' : 's') })),
      verdict,
      rows.length ? h('table', null, h('thead', null, h('tr', null, h('th', { text: 'value' }), h('th', { class: 'num', text: 'beats avg.' }),
        h('th', { class: 'num', text: 'wins' }), h('th', { class: 'num', text: 'stars' }))), h('tbody', null, rows)) : null);
  });
  fill(side, h('h3', { text: 'Which value wins' }),
    h('p', { class: 'muted small duel-count', text: duels.length + ' duel' + (duels.length === 1 ? '' : 's') + (me ? ' (' + mine + ' yours)' : '') +
      ' · a Bradley–Terry ranking; ties count half' }),
    blocks,
    h('div', { class: 'panel-actions' },
      h('button', { type: 'button', class: 'btn primary', 'data-act': 'export' }, 'Export duels.csv'),
      h('button', { type: 'button', class: 'btn', 'data-act': 'import' }, 'Import duels…'),
      h('button', { type: 'button', class: 'btn subtle', 'data-act': 'clear' }, 'Clear all duels')));
}

grid.addEventListener('click', (e) => {
  if (S.view !== 'duels') return;
  const b = e.target.closest('button');
  if (!b || !b.closest('.duel')) return;
  if (b.dataset.judge) { judge(b.dataset.judge); return; }
  if (b.dataset.step) { const p = b.dataset.step.split(':'); stepSample(+p[0], +p[1]); return; }
  switch (b.dataset.act) {
    case 'skip': skipDuel(); break;
    case 'undo': undoDuel(); break;
    case 'export': exportDuels(); break;
    case 'import': $('import-file').click(); break;
    case 'clear':
      if (!D.clearArmed) {
        b.textContent = 'Click again to clear every duel';
        D.clearArmed = setTimeout(() => { D.clearArmed = 0; if (b.isConnected) b.textContent = 'Clear all duels'; }, 4000);
        return;
      }
      clearTimeout(D.clearArmed); D.clearArmed = 0;
      duels.length = 0; saveDuels(); D.cur = null; drawDuel();
      break;
    default: break;
  }
});
// Keys while the duel view is shown (before 70-keys.js's handler; overlays keep theirs).
const DUEL_KEYS = { 1: 'a', ArrowLeft: 'a', 2: 'b', ArrowRight: 'b', 0: 'tie', ArrowDown: 'tie' };
document.addEventListener('keydown', (e) => {
  if (S.view !== 'duels' || e.ctrlKey || e.metaKey || e.altKey) return;
  if (!$('note').hidden || !$('help').hidden || !$('compare').hidden || !$('viewer').hidden) return;
  if ($('reviewer') && !$('reviewer').hidden) return; // the name dialog (85-picks.js) has the keys
  if (typing(e.target) || (e.target.type === 'range' && /^Arrow/.test(e.key))) return;
  if ((e.key === ' ' || e.key === 'Enter') && e.target.closest && e.target.closest('button, a, summary, label')) return;
  let act = null;
  if (DUEL_KEYS[e.key]) act = () => judge(DUEL_KEYS[e.key]);
  else if (e.key === ' ') act = () => { if (D.videos.length) duelPlay(D.videos[0].paused); };
  else if (e.key === 'n') act = skipDuel;
  else if (e.key === 'u') act = undoDuel;
  else if (e.key === 'ArrowUp') act = () => {};
  if (!act) return;
  e.preventDefault(); e.stopImmediatePropagation();
  act();
}, true);

// ------------------------------------------------------------------ duels.csv

// Cells go through csvCell (85-picks.js): the formula rule of runner/review/csvsafe.py; the
// importer gets them back with the mark removed (the Report.importers contract).
function duelsCsv() {
  const lines = [DUEL_COLUMNS].concat(duels.map((x) => [RUN.id, x.r, x.d, x.a, x.b, x.av, x.bv, x.w, x.at]));
  return lines.map((cells) => cells.map(csvCell).join(',')).join('\r\n') + '\r\n';
}
function exportDuels() {
  if (!duels.length) { toast('No duels yet: pick A, B or tie first'); return; }
  const url = URL.createObjectURL(new Blob([duelsCsv()], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: 'duels.csv' });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
  toast('duels.csv: ' + duels.length + ' duel' + (duels.length === 1 ? '' : 's'));
}
Report.importers.push({
  accepts: (head) => head.indexOf('winner') >= 0 && head.indexOf('a_job_key') >= 0 && head.indexOf('b_job_key') >= 0,
  import(head, rows, fileName) {
    const col = {};
    for (const c of DUEL_COLUMNS) col[c] = head.indexOf(c);
    const file = fileName || 'duels.csv';
    for (const c of ['dimension', 'winner']) if (col[c] < 0) return file + ': no ' + c + ' column (export it again from the duel view); nothing imported';
    const seen = new Set(duels.map((x) => [x.r, x.d, x.a, x.b, x.w, x.at].join('\u0000')));
    let added = 0, other = 0, same = 0;
    const bad = [];
    rows.forEach((r, i) => {
      const cell = (c) => (col[c] >= 0 ? (r[col[c]] || '').trim() : '');
      if (cell('run_id') && cell('run_id') !== RUN.id) { other++; return; }
      // a file without a reviewer column (edited by hand) counts as one reviewer named after it
      const who = cleanName(col.reviewer >= 0 ? cell('reviewer') : fileName || ''); // as picks and promote name it
      const x = duelChecked({ r: who, d: cell('dimension'),
        a: cell('a_job_key'), b: cell('b_job_key'), w: cell('winner').toLowerCase(), at: cell('at') });
      if (!x) { bad.push(i + 2); return; }
      const id = [x.r, x.d, x.a, x.b, x.w, x.at].join('\u0000');
      if (seen.has(id)) { same++; return; }
      seen.add(id); duels.push(x); added++;
    });
    saveDuels();
    D.cur = null;
    if (S.view === 'duels') drawDuel();
    return file + ': ' + added + ' duel' + (added === 1 ? '' : 's') + (same ? '; ' + same + ' already here' : '') +
      (other ? '; ' + other + ' from another run' : '') +
      (bad.length ? '; rows ' + bad.slice(0, 5).join(', ') + (bad.length > 5 ? '…' : '') +
        ' skipped (a job key not in this run, an unknown dimension, or a winner other than a, b or tie)' : '');
  },
});

// The duel view ignores the axes; it has no cards of its own.
Report.views.register('duels', {
  render: renderDuels, ensure: () => null, all: () => {}, refresh: () => {}, axes: false,
});
