// ------------------------------------------------------------------ print: the contact sheet

// Printing lays the current view (its filters, sort and axes) out as a contact sheet sized to the
// page (report.css, @media print): every card of the view, each with its poster. The browser's
// `beforeprint` cannot wait for images to load, so the Print button prepares the page first
// (all cards drawn, posters loaded and decoded), then opens the print dialog; Ctrl+P draws every
// card with eager posters, which load from the report's own folder in time in most browsers.
// Above PRINT_MAX cards the button asks to filter first and Ctrl+P prints the first PRINT_MAX.
const PRINT_MAX = 500;
let printView = null;

function printCount() { return L ? (view().axes ? L.order.length : L.vis.length) : 0; }
function preparePrint() {
  if (printView === null) printView = S.view;
  if (S.view !== 'sheet') { S.view = 'sheet'; render(); }
  const n = printCount();
  if (n <= PRINT_MAX) renderAll();
  else {
    const keep = new Set(L.order.slice(0, PRINT_MAX));
    for (const u of keep) ensureRendered(u);
    for (const el of grid.querySelectorAll('.card[data-u]')) el.classList.toggle('print-skip', !keep.has(units[+el.dataset.u]));
  }
  let note = $('print-note');
  if (n > PRINT_MAX) {
    if (!note) { note = h('p', { id: 'print-note', class: 'print-note' }); grid.prepend(note); }
    note.textContent = 'Printed the first ' + PRINT_MAX + ' of ' + n.toLocaleString('en-US') +
      ' cards. Filter the view (status, picks, search or a dimension) to ' + PRINT_MAX + ' or fewer to print them all.';
  } else if (note) note.remove();
  const imgs = Array.from(grid.querySelectorAll('img'));
  for (const img of imgs) if (img.loading !== 'eager') img.loading = 'eager';
  return imgs;
}
function endPrint() {
  const was = printView;
  printView = null;
  if (was !== null && was !== S.view) { S.view = was; render(); }
  else {
    for (const el of grid.querySelectorAll('.print-skip')) el.classList.remove('print-skip');
    const note = $('print-note'); if (note) note.remove();
  }
}
// The Print button: every card with its poster decoded, then the browser's print dialog.
function printSheet() {
  const n = printCount();
  if (n > PRINT_MAX) {
    toast(n.toLocaleString('en-US') + ' cards in this view: filter it to ' + PRINT_MAX +
      ' or fewer to print (status, picks, search or a dimension filter).');
    return Promise.resolve(false);
  }
  const btn = $('print-btn');
  btn.disabled = true;
  const imgs = preparePrint();
  // decode() waits for the load; a file that cannot load rejects, and prints as a blank box
  return Promise.all(imgs.map((img) => img.decode().catch(() => null))).then(() => {
    btn.disabled = false;
    document.documentElement.dataset.printReady = String(imgs.length);
    window.print();
    return true;
  });
}
$('print-btn').addEventListener('click', () => { printSheet(); });
window.addEventListener('beforeprint', () => { if (printView === null) preparePrint(); });
window.addEventListener('afterprint', endPrint);
