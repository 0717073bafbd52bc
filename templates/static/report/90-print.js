// ------------------------------------------------------------------ print: the contact sheet

let printView = null;
window.addEventListener('beforeprint', () => {
  printView = S.view;
  if (S.view !== 'sheet') { S.view = 'sheet'; render(); }
  renderAll();
  for (const img of grid.querySelectorAll('img[loading="lazy"]')) img.loading = 'eager';
});
window.addEventListener('afterprint', () => { if (printView && printView !== S.view) { S.view = printView; render(); } printView = null; });
