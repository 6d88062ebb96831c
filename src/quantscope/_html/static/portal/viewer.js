// The image page's deep-zoom viewer: OpenSeadragon over quantscope's tile endpoints.
//
//   /api/images/{id}/tiles/{level}/{z}/{y}/{x}.png?c=0,1&t=0&min=a,b&max=c,d
//   /api/images/{id}/labels/{name}/tiles/{level}/{z}/{y}/{x}.png?t=0
//
// Level 0 of the API is the full resolution (OME-Zarr's order); OpenSeadragon numbers its
// levels the other way (its highest level is the full resolution), so a tile of OSD level L is
// API level (maxLevel - L). The configuration (pyramid shapes, channels with colour and window,
// label names) comes from the page (data-config of #viewer). Changing channels, contrast, z or
// t swaps in a tile source with the new parameters (new URLs: the browser's and OSD's caches
// stay right); the label image is a second tiled image with its own opacity.
"use strict";

(function () {
  const el = document.getElementById("viewer");
  if (!el || typeof OpenSeadragon === "undefined") return;
  const cfg = JSON.parse(el.dataset.config);
  if (!cfg.levels.length) {
    el.textContent = "This image's pyramid cannot be read.";
    return;
  }
  const full = cfg.levels[0];
  const width = full[4];
  const height = full[3];
  const maxLevel = cfg.levels.length - 1;
  const form = document.getElementById("controls");
  const state = { z: Math.floor(cfg.size.z / 2), t: 0, labels: [], opacity: 0.5 };

  function channelParams() {
    const on = [];
    const lo = [];
    const hi = [];
    for (const row of form.querySelectorAll(".channel")) {
      if (!row.querySelector(".ch-on").checked) continue;
      on.push(row.dataset.index);
      lo.push(row.querySelector(".ch-min").value);
      hi.push(row.querySelector(".ch-max").value);
    }
    return { c: on.join(","), min: lo.join(","), max: hi.join(","), n: on.length };
  }

  function source(base, query, levels, planes) {
    return {
      width: width,
      height: height,
      tileSize: cfg.tile,
      tileOverlap: 0,
      minLevel: maxLevel + 1 - (levels || cfg.levels.length), // coarser levels it lacks: none
      maxLevel: maxLevel,
      getTileUrl: function (level, x, y) {
        const z = Math.min(state.z, (planes || cfg.size.z) - 1);
        return base + "/" + (maxLevel - level) + "/" + z + "/" + y + "/" + x + ".png?" + query;
      },
    };
  }

  function imageSource() {
    const p = channelParams();
    const q = new URLSearchParams({ c: p.c, t: String(state.t), min: p.min, max: p.max });
    return { src: source("/api/images/" + encodeURIComponent(cfg.id) + "/tiles", q.toString()), n: p.n };
  }

  function labelSource(name) {
    const base = "/api/images/" + encodeURIComponent(cfg.id) + "/labels/" + encodeURIComponent(name) + "/tiles";
    const label = cfg.labels.find(function (l) { return l.name === name; });
    return source(base, "t=" + state.t, label ? label.levels : 1, label ? label.z : 1);
  }

  const first = imageSource();
  const viewer = OpenSeadragon({
    element: el,
    prefixUrl: "/static/vendor/openseadragon/images/",
    tileSources: first.src,
    showNavigator: false, // (a minimap would fetch the coarse levels of every image twice)
    maxZoomPixelRatio: 4,
    immediateRender: true, // the level the view needs first, not every coarser one before it
    minZoomImageRatio: 0.1, // zoom out until the image is small (the coarser levels show)
    visibilityRatio: 0.5,
    imageSmoothingEnabled: false,
    crossOriginPolicy: false,
    drawer: "canvas", // plain 2-D canvas: no WebGL needed (headless browsers, old laptops)
  });
  window.quantscopeViewer = viewer; // for the browser tests and the console
  let base = null; // the channel image
  const overlays = new Map(); // label name -> tiled image

  viewer.addOnceHandler("open", function () {
    base = viewer.world.getItemAt(0);
    base.setOpacity(first.n ? 1 : 0);
  });

  function replaceBase() {
    if (!base) return;
    const next = imageSource();
    const old = base;
    viewer.addTiledImage({
      tileSource: next.src,
      index: 0,
      opacity: next.n ? 1 : 0,
      success: function (event) {
        base = event.item;
        viewer.world.removeItem(old);
      },
    });
  }

  function setLabel(name, on) {
    const current = overlays.get(name);
    if (current) {
      viewer.world.removeItem(current);
      overlays.delete(name);
    }
    if (!on) return;
    viewer.addTiledImage({
      tileSource: labelSource(name),
      opacity: state.opacity,
      success: function (event) {
        overlays.set(name, event.item);
      },
    });
  }

  form.addEventListener("change", function (event) {
    const target = event.target;
    if (target.classList.contains("label-on")) {
      setLabel(target.value, target.checked);
    } else if (target.id === "label-opacity") {
      state.opacity = parseFloat(target.value);
      for (const item of overlays.values()) item.setOpacity(state.opacity);
    } else if (target.id === "z" || target.id === "t") {
      state[target.id] = parseInt(target.value, 10);
      document.getElementById(target.id + "-value").textContent = target.value;
      replaceBase();
      for (const name of Array.from(overlays.keys())) setLabel(name, true);
    } else if (contrastOk()) {
      replaceBase();
    }
  });

  // a channel's min must be a number below its max: mark the pair, keep the last good tiles
  function contrastOk() {
    let ok = true;
    for (const row of form.querySelectorAll(".channel")) {
      const lo = row.querySelector(".ch-min");
      const hi = row.querySelector(".ch-max");
      const bad = lo.value === "" || hi.value === "" || !(parseFloat(lo.value) < parseFloat(hi.value));
      lo.setCustomValidity(bad ? "min must be below max" : "");
      hi.setCustomValidity(bad ? "max must be above min" : "");
      ok = ok && !bad;
    }
    return ok;
  }
  const opacity = document.getElementById("label-opacity");
  if (opacity) {
    opacity.addEventListener("input", function () {
      state.opacity = parseFloat(opacity.value);
      for (const item of overlays.values()) item.setOpacity(state.opacity);
    });
  }
})();
