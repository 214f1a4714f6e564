// A form of class "once" is sent once: a double click or a second tap
// while the page loads sends nothing more. The server is idempotent
// anyway (a refund is recorded once); this spares the admin a second
// "already done" page.
document.addEventListener('submit', function (e) {
  var f = e.target;
  if (!f.classList || !f.classList.contains('once')) return;
  if (f.dataset.sent) { e.preventDefault(); return; }
  f.dataset.sent = '1';
  setTimeout(function () {
    f.querySelectorAll('button').forEach(function (b) { b.disabled = true; });
  }, 0);
}, true);
