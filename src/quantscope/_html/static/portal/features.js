// The features page: a click on a point of the scatter plot shows that object's crop
// (GET /api/images/{id}/objects/{label}/crop.png?labels=NAME) beside the plot.
(function () {
  "use strict";
  var scatter = document.getElementById("scatter");
  var box = document.getElementById("crop-box");
  var img = document.getElementById("crop");
  if (!scatter || !box || !img) { return; }
  scatter.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest("a.point") : null;
    if (!a) { return; }
    ev.preventDefault();
    var href = a.getAttribute("href") || a.getAttributeNS("http://www.w3.org/1999/xlink", "href");
    img.src = href;
    document.getElementById("crop-caption").textContent =
      "image " + a.getAttribute("data-image") + ", object " + a.getAttribute("data-label");
    box.hidden = false;
  });
})();
