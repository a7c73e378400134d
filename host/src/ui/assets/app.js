// cachehost ui: the one script, embedded in the binary. It places the timeline's bars and,
// on the page of a run that is still going, polls the run and reloads when it changes.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const bar of document.querySelectorAll(".gantt a.bar")) {
    bar.style.left = bar.dataset.left + "%";
    bar.style.width = bar.dataset.width + "%";
  }
  const live = document.querySelector("[data-live-run]");
  if (live) {
    const stamp = live.dataset.stamp;
    const poll = () =>
      fetch("/api/runs/" + encodeURIComponent(live.dataset.liveRun) + "/stamp", { credentials: "same-origin" })
        .then((r) => r.text())
        .then((now) => { if (now !== stamp) { location.reload(); } else { setTimeout(poll, 1000); } })
        .catch(() => setTimeout(poll, 2000));
    setTimeout(poll, 1000);
  }
});
