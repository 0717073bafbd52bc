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
