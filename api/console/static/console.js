// The console's page script: nothing a page needs to work (every page works without it); it only
// puts the focus on a page's first problem or outcome, so a keyboard or screen-reader user hears it.
document.addEventListener('DOMContentLoaded', () => {
  const notice = document.querySelector('.problem[role="alert"], .outcome[role="status"]');
  if (notice) {
    notice.setAttribute('tabindex', '-1');
    notice.focus();
  }
});
