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
