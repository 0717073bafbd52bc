/* runner report: draws the grid from the JSON embedded in the page.
 *
 * Inlined into index.html and admitted by its SHA-256 in the page's Content-Security-Policy.
 * Rules kept throughout: user text only ever goes through textContent / createTextNode (never
 * innerHTML), URLs only from the data's relative media paths (checked by safeUrl), no inline
 * handlers, no eval, no network. Picks live in localStorage under the run id.
 */
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const DATA = JSON.parse($('report-data').textContent);
  performance.mark('runner-data-parsed');
  const RUN = DATA.run;
  const DIMS = DATA.dims;
  const STATES = DATA.states;
  const FAILED = new Set(['failed', 'rejected', 'lost', 'result_error', 'expired']);
  const PROMOTED = !!RUN.parentRun;
  const MAX_COMPARE = 4;
  const MAX_LIVE = 8;

  // ------------------------------------------------------------------ helpers

  function h(tag, props) {
    const el = document.createElement(tag);
    if (props) {
      for (const k of Object.keys(props)) {
        const v = props[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (let i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function fill(el) { el.replaceChildren(); for (let i = 1; i < arguments.length; i++) add(el, arguments[i]); return el; }
  function add(el, kid) {
    if (kid === null || kid === undefined || kid === false) return;
    if (Array.isArray(kid)) { for (const k of kid) add(el, k); return; }
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  // Only our own media folder: relative, no scheme, no parent directory.
  function safeUrl(u) {
    return typeof u === 'string' && /^media\/[A-Za-z0-9._/-]+$/.test(u) && u.indexOf('..') < 0 ? u : null;
  }
  function fmtCredits(v) {
    if (v === null || v === undefined) return '–';
    return Math.abs(v) < 1000 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
  }
  function fmtUsd(v) { return v === null || v === undefined ? '' : '$' + (v / RUN.creditsPerUsd).toFixed(2); }
  function fmtDur(s) {
    if (s === null || s === undefined) return '–';
    if (s < 90) return s.toFixed(1) + ' s';
    const m = Math.floor(s / 60), r = Math.floor(s % 60);
    return m + 'm ' + String(r).padStart(2, '0') + 's';
  }
  function fmtClock(s) {
    if (!isFinite(s)) s = 0;
    const m = Math.floor(s / 60), r = s - m * 60;
    return m + ':' + (r < 10 ? '0' : '') + r.toFixed(1);
  }
  function stateOf(state) { return STATES[state] || [state, 'wait']; }
  function clip(text, n) { text = String(text); return text.length > n ? text.slice(0, n - 1) + '…' : text; }
  function debounce(fn, ms) { let t = 0; return function () { clearTimeout(t); t = setTimeout(fn, ms); }; }
  let toastTimer = 0;
  function toast(text) {
    const el = $('toast'); el.textContent = text; el.hidden = false;
    clearTimeout(toastTimer); toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
  }

  // ------------------------------------------------------------------ data

  const FI = {}; DATA.fields.forEach((f, i) => { FI[f] = i; });
  function decodeMedia(m) {
    if (!m) return null;
    const video = safeUrl(m[0]);
    if (!video) return null;
    const stem = video.replace(/\.[A-Za-z0-9]+$/, '');
    const pick = (v, ext) => (v === 1 ? safeUrl(stem + ext) : safeUrl(v));
    // m[8]: `runner prune` removed the video (the poster and strip stay): no player
    const pruned = typeof m[8] === 'string' && m[8] ? m[8] : null;
    return { video: pruned ? null : video, pruned: pruned, poster: pick(m[1], '.jpg'), strip: pick(m[2], '.strip.jpg'), duration: m[3],
      width: m[4], height: m[5], audio: m[6], fps: m[7] || 24 };
  }
  const jobs = DATA.jobs.map((a, i) => ({
    i: i, key: String(a[FI.key]), variant: String(a[FI.variant]), sample: a[FI.sample],
    name: String(a[FI.name] === null ? '' : a[FI.name]), dims: a[FI.dims],
    prompt: String(DATA.prompts[a[FI.prompt]] || ''), state: String(a[FI.state]), code: a[FI.code],
    message: a[FI.message], credits: a[FI.credits], estimate: a[FI.estimate], latency: a[FI.latency],
    media: decodeMedia(a[FI.media]), mismatches: a[FI.mismatches] || '', reused: a[FI.reused],
    tier: RUN.tier, parent: null, unit: null, text: null,
  }));
  const byKey = new Map();
  for (const j of jobs) byKey.set(j.key, j);
  for (const j of jobs) {
    const p = DATA.jobs[j.i][FI.parent];
    if (!p) continue;
    j.parent = {
      i: -1, key: String(p.key), variant: j.variant, sample: j.sample, name: j.name, dims: j.dims,
      prompt: j.prompt, state: p.missing ? 'missing' : String(p.state), code: p.code || null,
      message: p.missing ? 'the parent job is not in the ledger any more' : p.message,
      credits: p.credits === undefined ? null : p.credits, estimate: p.estimate === undefined ? null : p.estimate,
      latency: p.latency === undefined ? null : p.latency, media: decodeMedia(p.media), mismatches: '',
      reused: null, tier: RUN.parentTier || 'fast', parent: null, unit: null, isParent: true, child: j,
    };
    byKey.set('parent:' + j.parent.key, j.parent);
  }
  const units = [];
  const byVariant = new Map();
  for (const j of jobs) {
    let u = byVariant.get(j.variant);
    if (!u) {
      u = { id: units.length, jobs: [], cur: 0, dims: j.dims, first: j.i, el: null };
      byVariant.set(j.variant, u); units.push(u);
    }
    u.jobs.push(j); j.unit = u;
  }
  for (const u of units) u.jobs.sort((a, b) => a.sample - b.sample);
  for (const j of jobs) if (j.parent) j.parent.unit = j.unit;
  const dimIndex = {}; DIMS.forEach((d, i) => { dimIndex[d.name] = i; });
  function dimValue(j, d) { const v = j.dims[d]; return v >= 0 ? DIMS[d].values[v] : ''; }
  function searchText(j) {
    if (j.text === null) {
      j.text = [j.name, j.prompt, j.key, j.state, j.code || '', j.message || '',
        DIMS.map((d, i) => dimValue(j, i)).join(' ')].join(' ').toLowerCase();
    }
    return j.text;
  }
  function jobOfBox(box) { return byKey.get(box.dataset.k) || null; }
  function boxKey(j) { return j.isParent ? 'parent:' + j.key : j.key; }

  // portrait-heavy runs get taller media boxes
  (function () {
    let portrait = 0, known = 0;
    for (const j of jobs) {
      if (j.media && j.media.width && j.media.height) { known++; if (j.media.height > j.media.width) portrait++; }
    }
    const share = known ? portrait / known : 0;
    if (share > 0.6) document.documentElement.style.setProperty('--media-ar', '4 / 5');
    else if (share > 0.25) document.documentElement.style.setProperty('--media-ar', '1 / 1');
  })();

  // ------------------------------------------------------------------ picks (localStorage)

  const PICKS_KEY = 'runner-picks:' + RUN.id;
  const UI_KEY = 'runner-ui:' + RUN.id;
  const picks = new Map(); // job key -> {s: 1 | -1 | 0, note: string}
  (function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(PICKS_KEY) || 'null');
      if (saved && saved.picks && typeof saved.picks === 'object') {
        for (const k of Object.keys(saved.picks)) {
          const p = saved.picks[k];
          if (!byKey.has(k) || !p || typeof p !== 'object') continue;
          picks.set(k, { s: p.s === 1 || p.s === -1 ? p.s : 0, note: typeof p.note === 'string' ? p.note : '' });
        }
      }
    } catch (e) { /* unreadable storage: start empty */ }
  })();
  function savePicks() {
    const out = {};
    for (const [k, p] of picks) if (p.s || p.note) out[k] = p;
    try { localStorage.setItem(PICKS_KEY, JSON.stringify({ v: 1, run: RUN.id, picks: out })); }
    catch (e) { toast('Picks could not be saved in this browser: ' + e.message); }
  }
  function starOf(j) { const p = picks.get(j.key); return p ? p.s : 0; }
  function noteOf(j) { const p = picks.get(j.key); return p ? p.note : ''; }
  function setPick(j, s, note) {
    if (j.isParent) { toast('Star the ' + RUN.tier + ' render; the ' + j.tier + ' one belongs to run ' + RUN.parentRun); return; }
    const p = picks.get(j.key) || { s: 0, note: '' };
    if (s !== undefined) p.s = s;
    if (note !== undefined) p.note = note;
    picks.set(j.key, p);
    savePicks();
    refreshPicks(j.unit);
    updatePickCounts();
    if (!$('picks').hidden) renderPicks();
  }
  function starred() { return jobs.filter((j) => starOf(j) === 1); }

  // ------------------------------------------------------------------ view state

  function defaultAxes() {
    const idx = DIMS.map((d, i) => i);
    let rows = dimIndex.name !== undefined ? dimIndex.name : -1;
    if (rows < 0 && idx.length > 1) rows = idx.slice().sort((a, b) => DIMS[b].values.length - DIMS[a].values.length)[0];
    const rest = idx.filter((i) => i !== rows).sort((a, b) => DIMS[a].values.length - DIMS[b].values.length);
    let cols = rest.length ? rest[0] : -1;
    // aspect ratio as columns when it varies: each column then has boxes of its own shape
    const ar = dimIndex.aspect_ratio;
    if (ar !== undefined && ar !== rows && DIMS[ar].values.length <= 6) cols = ar;
    if (rows < 0 && cols >= 0 && DIMS[cols].values.length > 8) { rows = cols; cols = -1; }
    return [rows, cols];
  }
  const S = {
    rows: -1, cols: -1, filters: new Map(), status: 'all', picks: 'all', q: '', sort: 'ledger',
    view: 'grid', size: PROMOTED ? 340 : 230, prompts: true, loop: true, muted: true, compare: [], focus: -1,
  };
  (function restore() {
    const axes = defaultAxes(); S.rows = axes[0]; S.cols = axes[1];
    try {
      const ui = JSON.parse(localStorage.getItem(UI_KEY) || 'null');
      if (!ui) return;
      if (ui.rows === '' || dimIndex[ui.rows] !== undefined) S.rows = ui.rows === '' ? -1 : dimIndex[ui.rows];
      if (ui.cols === '' || dimIndex[ui.cols] !== undefined) S.cols = ui.cols === '' ? -1 : dimIndex[ui.cols];
      if (S.rows === S.cols) S.cols = -1;
      if (['grid', 'sheet', 'list'].indexOf(ui.view) >= 0) S.view = ui.view;
      if (typeof ui.size === 'number' && ui.size >= 140 && ui.size <= 460) S.size = ui.size;
      if (typeof ui.prompts === 'boolean') S.prompts = ui.prompts;
      if (typeof ui.sort === 'string') S.sort = ui.sort;
    } catch (e) { /* defaults */ }
  })();
  function saveUi() {
    try {
      localStorage.setItem(UI_KEY, JSON.stringify({
        rows: S.rows < 0 ? '' : DIMS[S.rows].name, cols: S.cols < 0 ? '' : DIMS[S.cols].name,
        view: S.view, size: S.size, prompts: S.prompts, sort: S.sort,
      }));
    } catch (e) { /* not essential */ }
  }

  // ------------------------------------------------------------------ filtering and layout

  let L = null; // the current layout

  function terms() { return S.q.toLowerCase().split(/\s+/).filter(Boolean); }
  function jobMatches(j, words) {
    const tone = stateOf(j.state)[1];
    switch (S.status) {
      case 'done': if (j.state !== 'done') return false; break;
      case 'failed': if (!FAILED.has(j.state)) return false; break;
      case 'held': if (j.state !== 'unknown') return false; break;
      case 'wait': if (tone !== 'wait') return false; break;
      case 'mismatch': if (!j.mismatches) return false; break;
      default: break;
    }
    const s = starOf(j);
    if ((S.picks === 'star' && s !== 1) || (S.picks === 'reject' && s !== -1) || (S.picks === 'open' && s !== 0)) return false;
    if (S.picks === 'compare' && S.compare.indexOf(j.unit.id) < 0) return false;
    if (words.length) {
      const text = searchText(j);
      for (const w of words) if (text.indexOf(w) < 0) return false;
    }
    return true;
  }
  const RANK = { bad: 0, warn: 1, wait: 2, ok: 3 };
  function sortUnits(list) {
    const cur = (u) => u.jobs[u.cur];
    const num = (v, dir) => (v === null || v === undefined ? Infinity : dir * v);
    const by = {
      ledger: (a, b) => a.first - b.first,
      star: (a, b) => starOf(cur(b)) - starOf(cur(a)) || a.first - b.first,
      'cost-': (a, b) => num(cost(cur(a)), -1) - num(cost(cur(b)), -1) || a.first - b.first,
      'cost+': (a, b) => num(cost(cur(a)), 1) - num(cost(cur(b)), 1) || a.first - b.first,
      'lat+': (a, b) => num(cur(a).latency, 1) - num(cur(b).latency, 1) || a.first - b.first,
      'lat-': (a, b) => num(cur(a).latency, -1) - num(cur(b).latency, -1) || a.first - b.first,
      name: (a, b) => cur(a).name.localeCompare(cur(b).name) || a.first - b.first,
      state: (a, b) => RANK[stateOf(cur(a).state)[1]] - RANK[stateOf(cur(b).state)[1]] || a.first - b.first,
    };
    list.sort(by[S.sort] || by.ledger);
  }
  function cost(j) { return j.credits !== null && j.credits !== undefined ? j.credits : j.estimate; }

  function compute() {
    const words = terms();
    const vis = [];
    for (const u of units) {
      let ok = true;
      for (const [d, v] of S.filters) if (u.dims[d] !== v) { ok = false; break; }
      if (!ok) continue;
      let first = -1, curOk = false;
      for (let k = 0; k < u.jobs.length; k++) {
        if (jobMatches(u.jobs[k], words)) { if (first < 0) first = k; if (k === u.cur) curOk = true; }
      }
      if (first < 0) continue;
      if (!curOk) u.cur = first;
      vis.push(u);
    }
    sortUnits(vis);
    const r = S.view === 'list' ? -1 : S.rows, c = S.view === 'list' ? -1 : S.cols;
    const present = (d) => {
      if (d < 0) return [0];
      const seen = new Uint8Array(DIMS[d].values.length);
      for (const u of vis) if (u.dims[d] >= 0) seen[u.dims[d]] = 1;
      const out = [];
      for (let i = 0; i < seen.length; i++) if (seen[i]) out.push(i);
      return out;
    };
    const rowVals = present(r), colVals = present(c);
    const rowPos = new Map(rowVals.map((v, i) => [v, i])), colPos = new Map(colVals.map((v, i) => [v, i]));
    const cells = rowVals.map(() => colVals.map(() => []));
    for (const u of vis) {
      const ri = r < 0 ? 0 : rowPos.get(u.dims[r]), ci = c < 0 ? 0 : colPos.get(u.dims[c]);
      if (ri === undefined || ci === undefined) continue;
      cells[ri][ci].push(u);
    }
    const order = [];
    for (const row of cells) for (const cell of row) for (const u of cell) order.push(u);
    return { vis: vis, r: r, c: c, rowVals: rowVals, colVals: colVals, cells: cells, order: order,
      rows: [], common: new Map(), chipDims: new Map() };
  }

  // Words shared by most prompts of a grid row (more than half of its distinct prompts);
  // the others are what sets a card apart, and are highlighted.
  const WORD = /[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu;
  function wordSet(text) { return new Set(text.toLowerCase().match(WORD) || []); }
  function usualWords(list) {
    const seen = new Set();
    const counts = new Map();
    for (const j of list) {
      if (seen.has(j.prompt)) continue;
      seen.add(j.prompt);
      for (const w of wordSet(j.prompt)) counts.set(w, (counts.get(w) || 0) + 1);
    }
    if (seen.size < 2) return null; // one distinct prompt: nothing differs
    const usual = new Set();
    for (const [w, n] of counts) if (n * 2 > seen.size) usual.add(w);
    return usual;
  }
  // Words in every prompt of the list (compare: what differs from all the others).
  function commonWords(list) {
    let common = null;
    const seen = new Set();
    for (const j of list) {
      if (seen.has(j.prompt)) continue;
      seen.add(j.prompt);
      const words = wordSet(j.prompt);
      if (common === null) { common = words; continue; }
      for (const w of common) if (!words.has(w)) common.delete(w);
    }
    return seen.size > 1 ? common : null; // one distinct prompt: nothing differs
  }
  function rowCommon(ri) {
    if (!L.common.has(ri)) {
      const list = [];
      for (const cell of L.cells[ri]) for (const u of cell) list.push(u.jobs[u.cur]);
      L.common.set(ri, usualWords(list));
    }
    return L.common.get(ri);
  }
  function promptEl(text, common, cls) {
    const p = h('p', { class: cls || 'prompt', title: null });
    if (!common) { p.textContent = text; return p; }
    let last = 0;
    WORD.lastIndex = 0;
    let m;
    while ((m = WORD.exec(text)) !== null) {
      if (common.has(m[0].toLowerCase())) continue;
      if (m.index > last) p.append(document.createTextNode(text.slice(last, m.index)));
      p.append(h('mark', { text: m[0] }));
      last = m.index + m[0].length;
    }
    if (last < text.length) p.append(document.createTextNode(text.slice(last)));
    return p;
  }
  // Dimensions worth a label on a card: not an axis, and varying inside its cell.
  function chipDims(ri, ci) {
    const key = ri + ':' + ci;
    if (!L.chipDims.has(key)) {
      const cell = L.cells[ri][ci];
      const out = [];
      DIMS.forEach((d, i) => {
        if (i === L.r || i === L.c || cell.length < 2) return;
        const v0 = cell[0].dims[i];
        for (const u of cell) if (u.dims[i] !== v0) { out.push(i); return; }
      });
      L.chipDims.set(key, out);
    }
    return L.chipDims.get(key);
  }
  function chip(d, v, diff) {
    const value = v >= 0 ? DIMS[d].values[v] : '';
    return h('span', { class: 'chip h' + (Math.max(v, 0) % 8) + (diff ? ' diff' : ''), title: DIMS[d].name + ': ' + clip(value, 300) },
      h('i', { text: DIMS[d].name }), h('bdi', { text: clip(value, 80) }));
  }

  // ------------------------------------------------------------------ cards

  function problemBox(j) {
    const st = stateOf(j.state);
    const label = j.isParent && j.state === 'missing' ? 'not found' : st[0];
    const box = h('div', { class: 'problem tone-' + (j.state === 'missing' ? 'wait' : st[1]) }, h('b', { text: label }));
    if (j.state === 'unknown') {
      box.append(h('div', { class: 'err-msg', text: 'Create outcome unknown: up to ' + fmtCredits(j.estimate) +
        ' credits may have been charged. Settle it with:' }), h('code', { class: 'cmd', text: 'runner resolve ' + RUN.id }));
    } else if (j.state === 'expired') {
      box.append(h('div', { class: 'err-msg', text: 'Paid ' + fmtCredits(j.credits) +
        ' credits; the result expired before it was downloaded.' }));
    } else if (st[1] === 'wait' && j.state !== 'missing') {
      box.append(h('div', { class: 'err-msg', text: 'Not finished when the report was written. `runner resume ' + RUN.id + '` continues.' }));
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
    const foot = h('div', { class: 'foot' },
      h('span', { class: 'cost', title: (j.credits === null ? 'estimated ' : '') + fmtUsd(cost(j)) + (compact ? '' : ' · generation latency ' + fmtDur(j.latency)),
        text: costText + (compact || j.latency === null ? '' : ' · ' + fmtDur(j.latency)) }),
      j.state !== 'done' ? h('span', { class: 'st tone-' + st[1], text: st[0] }) : null,
      j.mismatches ? h('span', { class: 'flag', title: 'Differs from the request: ' + j.mismatches, text: '⚠' }) : null,
      h('span', { class: 'spacer' }),
      j.parent ? h('button', { type: 'button', class: 'btn icon abflip', title: 'A/B flip ' + j.parent.tier + ' against ' + j.tier, text: 'A/B' }) : null,
      h('button', { type: 'button', class: 'tog star', 'aria-pressed': starOf(j) === 1 ? 'true' : 'false', title: 'Star (s)', text: '★' }),
      h('button', { type: 'button', class: 'tog rej', 'aria-pressed': starOf(j) === -1 ? 'true' : 'false', title: 'Reject (x)', text: '✕' }));
    return foot;
  }
  function fillCard(el, u, ri, ci) {
    const j = u.jobs[u.cur];
    const s = starOf(j);
    el.dataset.key = j.key;
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
    if (S.view === 'list') fillRow(el, u); else fillCard(el, u, +el.dataset.ri, +el.dataset.ci);
  }

  // ------------------------------------------------------------------ grid rendering

  const grid = $('grid');
  let rowObserver = null, moreObserver = null;

  function render() {
    stopAllVideos();
    if (rowObserver) rowObserver.disconnect();
    if (moreObserver) moreObserver.disconnect();
    for (const u of units) u.el = null;
    L = compute();
    grid.className = 'view-' + S.view + (S.prompts ? '' : ' hide-prompts') + (L.r < 0 ? ' no-rows' : '');
    grid.style.setProperty('--card', S.size + 'px');
    grid.replaceChildren();
    if (!L.vis.length) {
      grid.append(h('p', { class: 'muted empty-note', text: units.length ? 'No card matches these filters.' : 'This run has no jobs.' }));
    } else if (S.view === 'list') renderList();
    else renderGrid();
    renderControls();
    saveUi();
  }

  function renderGrid() {
    const gap = S.view === 'sheet' ? 6 : 10;
    let cw = S.view === 'sheet' ? Math.round(S.size * 0.68) : S.size;
    const nc = L.colVals.length;
    const maxCount = new Array(nc).fill(1);
    for (const row of L.cells) row.forEach((cell, ci) => { if (cell.length > maxCount[ci]) maxCount[ci] = cell.length; });
    const rh = L.r < 0 ? 0 : (S.view === 'sheet' ? 110 : 150);
    const avail = Math.max(cw, document.documentElement.clientWidth - 36 - (rh ? rh + gap : 0) - (nc - 1) * gap);
    // Cards side by side per column: the same cap for every column, the largest that fits
    // the window with cards at most 15 % smaller than asked; one per column at least.
    let k = maxCount.map(() => 1);
    for (let cap = Math.max.apply(null, maxCount); cap >= 1; cap--) {
      const per = maxCount.map((m) => Math.min(m, cap));
      const cards = per.reduce((s, n) => s + n, 0);
      const fit = Math.floor((avail - (cards - nc) * gap) / cards);
      if (fit >= cw * 0.85 || cap === 1) {
        k = per;
        if (fit >= cw * 0.85) cw = Math.min(fit, Math.round(cw * 1.3)); // fill the window
        break;
      }
    }
    grid.style.setProperty('--card', cw + 'px');
    const width = (n) => n * cw + (n - 1) * gap;
    grid.style.setProperty('--tpl', (rh ? rh + 'px ' : '') + k.map((n) => width(n) + 'px').join(' '));
    if (L.c >= 0) {
      const head = h('div', { class: 'ghead' });
      if (rh) head.append(h('div', { class: 'corner', title: DIMS[L.r].name + ' × ' + DIMS[L.c].name, text: DIMS[L.r].name + ' ↓  ' + DIMS[L.c].name + ' →' }));
      L.colVals.forEach((v, ci) => {
        let n = 0; for (const row of L.cells) n += row[ci].length;
        const value = DIMS[L.c].values[v];
        head.append(h('div', { class: 'chead', title: DIMS[L.c].name + ': ' + clip(value, 400) }, h('bdi', { text: clip(value, 120) }), h('small', { text: String(n) })));
      });
      grid.append(head);
    }
    rowObserver = new IntersectionObserver(onRows, { rootMargin: '900px 0px' });
    moreObserver = new IntersectionObserver(onMore, { rootMargin: '700px 0px' });
    const cardH = cw / mediaRatio() + (S.view === 'sheet' ? 44 : 112);
    let budget = window.innerHeight + 900;
    L.cells.forEach((row, ri) => {
      const sec = h('section', { class: 'grow', 'data-r': ri });
      if (rh) {
        const v = L.rowVals[ri];
        let n = 0; for (const cell of row) n += cell.length;
        sec.append(h('div', { class: 'rhead', title: DIMS[L.r].name + ': ' + clip(DIMS[L.r].values[v], 400) },
          h('bdi', { text: clip(DIMS[L.r].values[v], 200) }), h('small', { text: String(n) })));
      }
      const state = { el: sec, done: false, cells: [] };
      let lines = 1;
      row.forEach((cell, ci) => {
        const el = h('div', { class: 'gcell ' + shapeOf(cell) + (cell.length ? '' : ' empty'), 'data-c': ci });
        sec.append(el);
        const per = Math.max(6, k[ci] * (S.view === 'sheet' ? 6 : 3));
        state.cells.push({ el: el, units: cell, shown: 0, per: per, ri: ri, ci: ci, more: null });
        lines = Math.max(lines, Math.ceil(Math.min(cell.length, per) / k[ci]));
      });
      const est = Math.round(lines * (cardH + gap) + 16);
      sec.style.containIntrinsicSize = 'auto ' + est + 'px';
      L.rows.push(state);
      grid.append(sec);
      if (budget > 0) { renderRow(ri); budget -= est; } else { sec.style.minHeight = est + 'px'; rowObserver.observe(sec); }
    });
  }
  // The media box of a cell takes the shape most of its videos have.
  function shapeOf(cell) {
    let port = 0, land = 0, square = 0;
    for (const u of cell) {
      const m = u.jobs[u.cur].media;
      if (!m || !m.width || !m.height) continue;
      if (m.height > m.width * 1.1) port++; else if (m.width > m.height * 1.1) land++; else square++;
    }
    const n = port + land + square;
    if (!n) return '';
    if (port > 0.6 * n) return 'ar-port';
    if (land > 0.6 * n) return 'ar-land';
    if (square > 0.6 * n) return 'ar-square';
    return 'ar-mixed';
  }
  function mediaRatio() {
    const v = getComputedStyle(document.documentElement).getPropertyValue('--media-ar').split('/');
    const r = parseFloat(v[0]) / parseFloat(v[1]);
    return isFinite(r) && r > 0 ? r : 1.6;
  }
  function renderRow(ri) {
    const state = L.rows[ri];
    if (!state || state.done) return;
    state.done = true;
    state.el.style.minHeight = '';
    for (const cell of state.cells) appendChunk(cell);
  }
  function appendChunk(cell) {
    const end = Math.min(cell.units.length, cell.shown + cell.per);
    const frag = document.createDocumentFragment();
    for (let i = cell.shown; i < end; i++) frag.append(cardEl(cell.units[i], cell.ri, cell.ci));
    cell.shown = end;
    if (cell.more) { moreObserver.unobserve(cell.more); cell.more.remove(); cell.more = null; }
    cell.el.append(frag);
    const left = cell.units.length - cell.shown;
    if (left > 0) {
      const btn = h('button', { type: 'button', class: 'btn', text: 'Show ' + Math.min(left, cell.per) + ' more (' + left + ' left)' });
      cell.more = h('div', { class: 'more' }, btn);
      cell.more.cellRef = cell;
      cell.el.append(cell.more);
      moreObserver.observe(cell.more);
    }
  }
  function onRows(entries) {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      rowObserver.unobserve(e.target);
      renderRow(+e.target.dataset.r);
    }
  }
  function onMore(entries) {
    for (const e of entries) if (e.isIntersecting && e.target.cellRef && e.target.isConnected) appendChunk(e.target.cellRef);
  }
  // Make sure a unit's card is in the DOM (for keyboard moves, the viewer and the picks list).
  function ensureRendered(u) {
    if (u.el && u.el.isConnected) return u.el;
    if (S.view === 'list') {
      while (L.list && L.list.shown < L.vis.length && !(u.el && u.el.isConnected)) appendRows();
      return u.el;
    }
    for (let ri = 0; ri < L.cells.length; ri++) {
      for (let ci = 0; ci < L.cells[ri].length; ci++) {
        if (L.cells[ri][ci].indexOf(u) < 0) continue;
        renderRow(ri);
        const cell = L.rows[ri].cells[ci];
        while (cell.shown <= cell.units.indexOf(u)) appendChunk(cell);
        return u.el;
      }
    }
    return null;
  }
  function renderAll() {
    if (!L) return;
    if (S.view === 'list') { while (L.list && L.list.shown < L.vis.length) appendRows(); return; }
    L.rows.forEach((state, ri) => {
      renderRow(ri);
      for (const cell of state.cells) while (cell.shown < cell.units.length) appendChunk(cell);
    });
  }

  // ------------------------------------------------------------------ list view

  function renderList() {
    const listDims = DIMS.map((d, i) => i).filter((i) => DIMS[i].name !== 'name');
    const head = h('tr', null, h('th', { text: '' }), h('th', { text: 'video' }), h('th', { text: 'name' }),
      listDims.map((i) => h('th', { text: DIMS[i].name })), h('th', { text: 'prompt' }), h('th', { text: 'status' }),
      h('th', { class: 'num sortable', 'data-sort': 'cost-', text: 'credits' }), h('th', { class: 'num sortable', 'data-sort': 'lat+', text: 'latency' }),
      h('th', { text: 'compare' }), h('th', { text: 'note' }));
    const tbody = h('tbody');
    const table = h('table', { class: 'list' }, h('thead', null, head), tbody);
    grid.append(table);
    moreObserver = new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting && e.target.isConnected) appendRows();
    }, { rootMargin: '800px 0px' });
    L.list = { tbody: tbody, shown: 0, more: null, dims: listDims };
    appendRows();
  }
  function appendRows() {
    const st = L.list;
    const end = Math.min(L.vis.length, st.shown + 150);
    const frag = document.createDocumentFragment();
    for (let i = st.shown; i < end; i++) {
      const u = L.vis[i];
      const tr = h('tr', { class: 'card', tabindex: S.focus === u.id ? '0' : '-1', 'data-u': u.id });
      fillRow(tr, u);
      u.el = tr;
      frag.append(tr);
    }
    st.shown = end;
    if (st.more) { moreObserver.unobserve(st.more); st.more.remove(); st.more = null; }
    st.tbody.append(frag);
    if (st.shown < L.vis.length) {
      st.more = h('tr', { class: 'more' }, h('td', { colspan: 20, text: (L.vis.length - st.shown) + ' more…' }));
      st.tbody.append(st.more);
      moreObserver.observe(st.more);
    }
  }
  function fillRow(tr, u) {
    const j = u.jobs[u.cur];
    const s = starOf(j);
    tr.dataset.key = j.key;
    tr.classList.toggle('starred', s === 1);
    tr.classList.toggle('rejected', s === -1);
    const st = stateOf(j.state);
    const thumb = j.media && j.media.poster ? h('img', { class: 'thumb', src: j.media.poster, loading: 'lazy', alt: '', title: 'Open (enter)' })
      : h('span', { class: 'pill tone-' + st[1], text: st[0] });
    fill(tr,
      h('td', null, h('button', { type: 'button', class: 'tog star', 'aria-pressed': s === 1 ? 'true' : 'false', title: 'Star (s)', text: '★' }),
        h('button', { type: 'button', class: 'tog rej', 'aria-pressed': s === -1 ? 'true' : 'false', title: 'Reject (x)', text: '✕' })),
      h('td', null, thumb),
      h('td', { class: 'name' }, clip(j.name, 120), stackEl(u)),
      L.list.dims.map((d) => h('td', { text: clip(dimValue(j, d), 160) })),
      h('td', null, promptEl(j.prompt, rowCommon(0))),
      h('td', null, h('span', { class: 'pill tone-' + st[1], text: st[0] }), j.code ? h('div', null, h('code', { text: clip(j.code, 80) })) : null,
        j.message ? h('div', { class: 'err-msg', text: clip(j.message, 400) }) : null),
      h('td', { class: 'num', title: fmtUsd(cost(j)), text: fmtCredits(cost(j)) }),
      h('td', { class: 'num', text: fmtDur(j.latency) }),
      h('td', null, h('label', { class: 'cmp', title: 'Add to compare (c)' }, h('input', { type: 'checkbox', checked: S.compare.indexOf(u.id) >= 0 }))),
      h('td', null, noteOf(j) ? h('div', { class: 'note-line', text: noteOf(j) }) : null));
  }

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
    const list = S.view === 'list';
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
    if (S.picks !== 'all') fchip('picks=' + S.picks, () => { S.picks = 'all'; $('picks-sel').value = 'all'; });
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
  function focused() {
    if (S.focus < 0) return null;
    const u = units[S.focus];
    return u.el && u.el.isConnected ? u : null;
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
  function openCompare(list, flip) {
    stopAllVideos();
    closeViewer();
    C.items = list; C.flip = !!flip && list.length === 2; C.shown = 0;
    const stage = $('cmp-stage');
    stage.replaceChildren();
    C.videos = []; C.master = null;
    const letters = 'ABCD';
    list.forEach((j, i) => {
      const label = h('span', { class: 'slot-label' }, h('span', { class: 'ab', text: letters[i] }),
        clip(j.name, 60) + ' · ' + j.tier + (j.unit && j.unit.jobs.length > 1 ? ' · ' + j.sample + '/' + j.unit.jobs.length : ''));
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
    $('cmp-title').textContent = list.length + ' videos' + (C.flip ? ' · A/B flip (tab)' : '');
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
      row('', 'ABCD'[i] + ' · ' + clip(j.name, 80), false);
      row('tier', j.tier, !same((o) => o.tier));
      DIMS.forEach((d, k) => row(d.name, clip(dimValue(j, k), 200), !same((o) => o.dims[k])));
      const common = commonWords(others(i).concat([j]));
      row('prompt', '', !same((o) => o.prompt), promptEl(j.prompt, common, 'prompt open'));
      row('status', stateOf(j.state)[0] + (j.code ? ' · ' + j.code : ''), !same((o) => o.state));
      row('credits', fmtCredits(cost(j)) + ' (' + fmtUsd(cost(j)) + ')', !same((o) => cost(o)));
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

  // ------------------------------------------------------------------ notes and help

  let noteJob = null;
  function openNote(u) {
    noteJob = u.jobs[u.cur];
    $('note-for').textContent = clip(noteJob.name, 80) + (u.jobs.length > 1 ? ' · repeat ' + noteJob.sample : '');
    $('note-text').value = noteOf(noteJob);
    $('note').hidden = false;
    $('note-text').focus();
  }
  function closeNote(saveIt) {
    if (saveIt && noteJob) setPick(noteJob, undefined, $('note-text').value.trim());
    $('note').hidden = true;
    const j = noteJob; noteJob = null;
    if (!$('viewer').hidden) renderViewer();
    else if (j && j.unit.el) j.unit.el.focus({ preventScroll: true });
  }
  function noteKeys(e) {
    if (e.key === 'Escape') { e.preventDefault(); closeNote(false); }
    else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); closeNote(true); }
  }
  $('note-save').addEventListener('click', () => closeNote(true));
  $('note-cancel').addEventListener('click', () => closeNote(false));
  function openHelp() { $('help').hidden = false; $('help-close').focus(); }
  function closeHelp() { $('help').hidden = true; const u = focused(); if (u) u.el.focus({ preventScroll: true }); }
  $('help-close').addEventListener('click', closeHelp);
  $('help').addEventListener('click', (e) => { if (e.target === $('help')) closeHelp(); });

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

  // ------------------------------------------------------------------ print: the contact sheet

  let printView = null;
  window.addEventListener('beforeprint', () => {
    printView = S.view;
    if (S.view !== 'sheet') { S.view = 'sheet'; render(); }
    renderAll();
    for (const img of grid.querySelectorAll('img[loading="lazy"]')) img.loading = 'eager';
  });
  window.addEventListener('afterprint', () => { if (printView && printView !== S.view) { S.view = printView; render(); } printView = null; });

  // ------------------------------------------------------------------ start

  updatePickCounts();
  $('status-sel').value = S.status;
  $('picks-sel').value = S.picks;
  render();
  performance.mark('runner-first-cards');
  grid.setAttribute('aria-busy', 'false');
  requestAnimationFrame(() => setTimeout(() => {
    performance.mark('runner-interactive');
    document.documentElement.dataset.ready = '1';
  }, 0));
})();
