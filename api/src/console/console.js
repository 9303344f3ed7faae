// Vigie console: the alert queue stays current. The server says `changed` when a commit or a
// review changes what the queue would show; the page then reloads (a new, logged page view),
// unless a review is being written, in which case it waits until that form is left.
(function () {
  "use strict";
  if (!document.querySelector("section.queue") || !window.EventSource) return;
  var stale = false;
  var editing = function () {
    var a = document.activeElement;
    return a && a.form && a.form.classList.contains("review");
  };
  var events = new EventSource("/console/queue/events");
  events.addEventListener("changed", function () {
    if (editing()) { stale = true; } else { window.location.reload(); }
  });
  document.addEventListener("focusout", function () {
    setTimeout(function () { if (stale && !editing()) window.location.reload(); }, 0);
  });
})();
