// QC dashboard: a click on a well of a plate heatmap opens that plate's map at the well.
"use strict";
document.addEventListener("click", (event) => {
  const well = event.target.closest("svg.heatmap rect.well");
  if (!well) return;
  const plate = well.closest("svg.heatmap").dataset.plate;
  const q = (well.dataset.q || "").split(" ");
  const name = q[q.length - 1];
  window.location.href = "/plates/" + encodeURIComponent(plate) + "#fields-" + encodeURIComponent(name);
});
