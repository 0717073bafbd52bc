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
