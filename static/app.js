// ParityRail: small niceties only. Every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  function copied(button) {
    var label = button.textContent;
    button.textContent = "Copied";
    button.classList.add("copied");
    setTimeout(function () {
      button.textContent = label;
      button.classList.remove("copied");
    }, 1500);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var text = button.getAttribute("data-copy") || "";
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(button); }, function () { fallback(text, button); });
    } else {
      fallback(text, button);
    }
  });
  function fallback(text, button) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the value stays visible to select by hand */ }
    document.body.removeChild(area);
    copied(button);
  }
  document.addEventListener("submit", function (event) {
    var message = event.submitter && event.submitter.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
