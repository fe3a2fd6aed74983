// wsi-heatmap's slide viewer: OpenSeadragon with the slide, the probability and Grad-CAM layers
// (coloured here from grey tiles, so the threshold re-colours them live), the tumour regions as
// outlines, a scale bar and the summary. Data: window.WSI_VIEW from data.js (see src/view/view.cpp).
//
// Everything is loaded as plain <script>/<img> URLs: from file:// a browser refuses fetch/XHR of
// local files, and every file:// image taints a canvas, so the pixels are never read back here;
// the layers are coloured by an SVG filter set as the canvas's `filter` while their tiles are drawn.
(function () {
  'use strict';
  const D = window.WSI_VIEW;
  const $ = (id) => document.getElementById(id);
  const SVGNS = 'http://www.w3.org/2000/svg';
  const view = (window.wsiView = { ready: false, errors: [] });
  if (!D || !window.OpenSeadragon) {
    document.body.textContent = 'wsi-heatmap viewer: data.js or OpenSeadragon did not load; keep the folder whole.';
    return;
  }
  const S = D.summary || {};
  const mpp = D.slide.mpp;  // µm per level-0 pixel; world coordinates are level-0 pixels

  // ---- text helpers (textContent only: names and paths come from files) ----
  const fmt = (v, digits) => (typeof v === 'number' && isFinite(v) ? v.toFixed(digits) : '–');
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function row(dl, term, value, title) {
    dl.appendChild(el('dt', {}, term));
    const dd = el('dd', title ? { title } : {}, value);
    dl.appendChild(dd);
    return dd;
  }

  // ---- side panel ----
  document.title = D.name + ' – wsi-heatmap';
  $('title').textContent = D.name;
  $('subtitle').textContent = D.slide.path;
  if (D.index) {
    $('back').hidden = false;
    $('back-link').setAttribute('href', D.index);
  }
  const sum = $('summary');
  const p = S.patches || {};
  row(sum, 'Slide score', fmt(S.slide_score, 3), 'highest patch probability');
  row(sum, 'Tumour area', fmt(S.tumour_area_mm2, 3) + ' mm²',
      'area of grid cells with probability ≥ ' + fmt((S.parameters || {}).threshold, 2));
  row(sum, 'Mean probability', fmt(S.mean_probability, 3));
  row(sum, 'Patches', (p.processed ?? '–') + ' of ' + (p.tissue ?? '–') + ' tissue' +
      (p.failed ? ', ' + p.failed + ' failed' : '') + ', ' + (p.tumour ?? '–') + ' tumour');
  row(sum, 'Slide', D.slide.width + ' × ' + D.slide.height + ' px, ' + fmt(mpp, 4) + ' µm/px');
  for (const m of D.metrics || []) row(sum, m.label, m.value, m.title);
  $('note').textContent = S.note || '';
  const model = $('model');
  const M = S.model || {};
  row(model, 'Model', M.name || '–', M.path);
  row(model, 'SHA-1', (M.sha1 || '').slice(0, 12), M.sha1);
  row(model, 'Grad-CAM', M.gradcam ? 'yes' : 'no');
  const sw = S.software || {};
  row(model, 'wsi-heatmap', sw.wsi_heatmap || '–');
  $('parameters').textContent = JSON.stringify(S.parameters || {}, null, 1);
  $('generated').textContent = 'Written by wsi-heatmap view ' + (D.generator || '');

  // ---- colour filters ----
  // feColorMatrix puts the grey value into alpha, feComponentTransfer maps grey to a colour map
  // and alpha to visibility (probability: a step at the threshold; Grad-CAM: a ramp).
  const defs = $('filters');
  let serial = 0;
  function table(values) { return values.map((v) => (v / 255).toFixed(4)).join(' '); }
  function makeFilter(name, colours, alpha) {
    const id = 'wsi-' + name + '-' + ++serial;  // a new id per change: canvases cache filters by their text
    const f = document.createElementNS(SVGNS, 'filter');
    f.setAttribute('id', id);
    f.setAttribute('color-interpolation-filters', 'sRGB');
    f.setAttribute('x', '0'); f.setAttribute('y', '0'); f.setAttribute('width', '1'); f.setAttribute('height', '1');
    const m = document.createElementNS(SVGNS, 'feColorMatrix');
    m.setAttribute('type', 'matrix');
    m.setAttribute('values', '1 0 0 0 0  0 1 0 0 0  0 0 1 0 0  1 0 0 0 0');
    f.appendChild(m);
    const t = document.createElementNS(SVGNS, 'feComponentTransfer');
    ['R', 'G', 'B'].forEach((c, k) => {
      const fn = document.createElementNS(SVGNS, 'feFunc' + c);
      fn.setAttribute('type', 'table');
      fn.setAttribute('tableValues', table(colours.map((rgb) => rgb[k])));
      t.appendChild(fn);
    });
    const a = document.createElementNS(SVGNS, 'feFuncA');
    a.setAttribute('type', alpha.type);
    a.setAttribute('tableValues', alpha.values);
    t.appendChild(a);
    f.appendChild(t);
    const old = defs.querySelector('filter[data-name="' + name + '"]');
    f.setAttribute('data-name', name);
    defs.appendChild(f);
    if (old) old.remove();
    return 'url(#' + id + ')';
  }
  // Grey g = round(255 p) is shown when p >= threshold, i.e. g >= 255 t - 0.5 (one entry per grey).
  function probFilter(threshold) {
    const first = Math.ceil(255 * threshold - 0.5);
    const steps = [];
    for (let g = 0; g < 256; ++g) steps.push(g >= first ? 1 : 0);
    return makeFilter('prob', D.colormap, { type: 'discrete', values: steps.join(' ') });
  }
  // viridis (matplotlib, CC0) at 0, 1/8, ..., 1: Grad-CAM in other colours than the probability.
  const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129],
    [92, 200, 99], [170, 220, 50], [253, 231, 37]];
  const filters = { prob: probFilter(D.threshold), cam: makeFilter('cam', VIRIDIS, { type: 'table', values: '0 0.2 1' }) };

  const legend = 'linear-gradient(to right, ' +
      D.colormap.map((c, i) => 'rgb(' + c.join(',') + ') ' + (100 * i / (D.colormap.length - 1)).toFixed(1) + '%').join(', ') + ')';

  // ---- the viewer ----
  const layers = D.layers;  // slide, prob, cam: {id, label, url, format, width, height, tileSize, overlap, worldWidth}
  const viewer = OpenSeadragon({
    element: $('viewer'),
    drawer: 'canvas',              // the tile-drawing event (filters) exists only on the canvas drawer
    showNavigationControl: false,  // no button images to ship; wheel, drag, pinch and the keyboard zoom
    showNavigator: false,
    animationTime: 0.4,
    maxZoomPixelRatio: 4,
    visibilityRatio: 0.5,
    crossOriginPolicy: false,
    gestureSettingsMouse: { clickToZoom: false },
    tileSources: layers.map((L) => ({
      tileSource: {
        Image: {
          xmlns: 'http://schemas.microsoft.com/deepzoom/2008', Url: L.url, Format: L.format,
          Overlap: String(L.overlap), TileSize: String(L.tileSize),
          Size: { Width: String(L.width), Height: String(L.height) },
        },
      },
      x: 0, y: 0, width: L.worldWidth,
      opacity: L.id === 'slide' ? 1 : 0,
    })),
  });
  view.viewer = viewer;
  const state = { opacity: Number($('opacity').value), threshold: D.threshold, on: {} };
  const items = {};

  viewer.addHandler('tile-drawing', (e) => {
    const L = e.tiledImage.wsiLayer;
    if (L === 'prob' || L === 'cam') e.context.filter = filters[L];
  });
  viewer.addHandler('open-failed', (e) => view.errors.push('open failed: ' + e.message));
  viewer.world.addHandler('add-item', (e) => {
    const i = viewer.world.getIndexOfItem(e.item);
    const L = layers[i];
    if (!L) return;
    e.item.wsiLayer = L.id;
    items[L.id] = e.item;
    e.item.addHandler('fully-loaded-change', updateReady);
  });
  viewer.addHandler('open', () => { applyLayers(); updateOverlay(); updateReady(); });
  function updateReady() {
    const shown = layers.filter((L) => state.on[L.id] && items[L.id]);
    view.ready = viewer.world.getItemCount() === layers.length && shown.every((L) => items[L.id].getFullyLoaded());
  }

  function applyLayers() {
    for (const L of layers) {
      const item = items[L.id];
      if (!item) continue;
      const opacity = L.id === 'slide' ? 1 : state.opacity;
      item.setOpacity(state.on[L.id] ? opacity : 0);
    }
    $('regions').style.display = state.on.regions ? '' : 'none';
    viewer.forceRedraw();
    updateReady();
  }

  // ---- layer toggles and sliders ----
  const toggles = layers.map((L) => ({ id: L.id, label: L.label })).concat(
    D.regions.features.length ? [{ id: 'regions', label: 'Tumour regions (' + D.regions.features.length + ')' }] : []);
  for (const t of toggles) {
    const box = el('input', { type: 'checkbox', id: 'layer-' + t.id });
    box.checked = t.id !== 'cam';  // Grad-CAM on demand: it hides the probability under it
    state.on[t.id] = box.checked;
    box.addEventListener('change', () => { state.on[t.id] = box.checked; applyLayers(); });
    const label = el('label', { class: 'layer' });
    label.appendChild(box);
    label.appendChild(document.createTextNode(' ' + t.label));
    $('layers').appendChild(label);
  }
  $('legend-bar').style.background = legend;
  const opacity = $('opacity');
  const threshold = $('threshold');
  threshold.value = String(D.threshold);
  function showValues() {
    $('opacity-value').textContent = fmt(state.opacity, 2);
    $('threshold-value').textContent = fmt(state.threshold, 2);
  }
  opacity.addEventListener('input', () => { state.opacity = Number(opacity.value); showValues(); applyLayers(); });
  threshold.addEventListener('input', () => {
    state.threshold = Number(threshold.value);
    filters.prob = probFilter(state.threshold);
    showValues();
    drawHistogram();
    viewer.forceRedraw();
  });
  showValues();

  // ---- probability histogram (one bin per 0.01; counts on a log scale) ----
  function drawHistogram() {
    const H = D.histogram;
    const box = $('histogram');
    box.textContent = '';
    if (!H || !H.bins.length) { box.textContent = 'no patches'; return; }
    const w = 260, h = 90, n = H.bins.length;
    const max = Math.log10(1 + Math.max(...H.bins));
    const svg = document.createElementNS(SVGNS, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + (h + 14));
    svg.setAttribute('width', '100%');
    const k0 = Math.round(state.threshold * n);
    H.bins.forEach((c, k) => {
      if (!c) return;
      const bh = Math.max(1, (h * Math.log10(1 + c)) / (max || 1));
      const r = document.createElementNS(SVGNS, 'rect');
      r.setAttribute('x', ((k * w) / n).toFixed(2));
      r.setAttribute('y', (h - bh).toFixed(2));
      r.setAttribute('width', (w / n).toFixed(2));
      r.setAttribute('height', bh.toFixed(2));
      r.setAttribute('fill', k >= k0 ? 'rgb(' + D.colormap[Math.round((k / (n - 1)) * (D.colormap.length - 1))].join(',') + ')' : '#9aa');
      const tip = document.createElementNS(SVGNS, 'title');
      tip.textContent = (k / n).toFixed(2) + '–' + ((k + 1) / n).toFixed(2) + ': ' + c + ' patches';
      r.appendChild(tip);
      svg.appendChild(r);
    });
    const x = state.threshold * w;
    const line = document.createElementNS(SVGNS, 'line');
    for (const [a, v] of [['x1', x], ['x2', x], ['y1', 0], ['y2', h]]) line.setAttribute(a, v.toFixed(2));
    line.setAttribute('class', 'threshold-line');
    svg.appendChild(line);
    for (const [t, anchor, pos] of [['0', 'start', 0], ['0.5', 'middle', w / 2], ['1', 'end', w]]) {
      const label = document.createElementNS(SVGNS, 'text');
      label.setAttribute('x', pos); label.setAttribute('y', h + 12); label.setAttribute('text-anchor', anchor);
      label.textContent = t;
      svg.appendChild(label);
    }
    box.appendChild(svg);
    let above = 0;
    for (let k = k0; k < n; ++k) above += H.bins[k];
    const total = H.bins.reduce((a, b) => a + b, 0);
    $('above').textContent = above + ' of ' + total + ' patches at p ≥ ' + fmt(state.threshold, 2) +
        ' (' + fmt((H.cell_area_mm2 || 0) * above, 3) + ' mm²); counts on a log scale';
  }
  drawHistogram();

  // ---- evaluation plots (evaluate-slides' SVGs, copied beside the page) ----
  if (D.plots && D.plots.length) {
    $('plots-section').hidden = false;
    for (const pl of D.plots) {
      const a = el('a', { href: pl.src, target: '_blank' });
      a.appendChild(el('img', { src: pl.src, alt: pl.title, class: 'plot' }));
      $('plots').appendChild(el('p', { class: 'plot-title' }, pl.title));
      $('plots').appendChild(a);
    }
  }

  // ---- tumour regions: SVG outlines in level-0 pixels, moved with the viewport ----
  const g = $('regions-g');
  const regions = D.regions.features.map((f, k) => {
    const rings = f.geometry.type === 'Polygon' ? [f.geometry.coordinates]
      : f.geometry.type === 'MultiPolygon' ? f.geometry.coordinates : [];
    const path = document.createElementNS(SVGNS, 'path');
    path.setAttribute('d', rings.flat().map((r) => 'M' + r.map((q) => q[0] + ' ' + q[1]).join('L') + 'Z').join(''));
    path.setAttribute('class', 'region');
    path.setAttribute('data-index', k);
    g.appendChild(path);
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const r of rings.flat()) for (const [x, y] of r) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
    const props = f.properties || {};
    return { path, rings: rings.flat(), box: [x0, y0, x1, y1], name: props.name || 'region ' + (k + 1), m: props.measurements || {} };
  });
  function inside(rs, x, y) {  // even-odd over the outer ring and its holes
    let odd = false;
    for (const r of rs)
      for (let i = 0, j = r.length - 1; i < r.length; j = i++)
        if ((r[i][1] > y) !== (r[j][1] > y) && x < ((r[j][0] - r[i][0]) * (y - r[i][1])) / (r[j][1] - r[i][1]) + r[i][0]) odd = !odd;
    return odd;
  }
  function regionAt(x, y) {
    if (!state.on.regions) return null;
    for (const r of regions) if (x >= r.box[0] && x <= r.box[2] && y >= r.box[1] && y <= r.box[3] && inside(r.rings, x, y)) return r;
    return null;
  }
  let hovered = null;
  const tooltip = $('tooltip');
  function hover(r, pos) {
    if (hovered && hovered !== r) hovered.path.classList.remove('hover');
    hovered = r;
    if (!r) { tooltip.hidden = true; return; }
    r.path.classList.add('hover');
    tooltip.hidden = false;
    tooltip.textContent = '';
    tooltip.appendChild(el('b', {}, r.name));
    tooltip.appendChild(el('div', {}, 'max probability ' + fmt(r.m.max_probability, 3)));
    tooltip.appendChild(el('div', {}, 'mean probability ' + fmt(r.m.mean_probability, 3)));
    if (typeof r.m.area_um2 === 'number') tooltip.appendChild(el('div', {}, 'area ' + fmt(r.m.area_um2 / 1e6, 3) + ' mm²'));
    tooltip.style.left = pos.x + 14 + 'px';
    tooltip.style.top = pos.y + 14 + 'px';
  }
  new OpenSeadragon.MouseTracker({
    element: viewer.canvas,
    moveHandler: (e) => {
      const q = viewer.viewport.pointFromPixel(e.position, true);
      hover(regionAt(q.x, q.y), e.position);
    },
    leaveHandler: () => hover(null),
  });

  // ---- scale bar (µm) and the outlines' transform, on every viewport change ----
  function updateOverlay() {
    const o = viewer.viewport.pixelFromPoint(new OpenSeadragon.Point(0, 0), true);
    const s = viewer.viewport.deltaPixelsFromPoints(new OpenSeadragon.Point(1, 0), true).x;  // screen px per level-0 px
    g.setAttribute('transform', 'translate(' + o.x + ' ' + o.y + ') scale(' + s + ')');
    const umPerPx = mpp / s;
    let um = Math.pow(10, Math.floor(Math.log10(umPerPx * 150)));
    for (const f of [5, 2]) if (um * f <= umPerPx * 150) { um *= f; break; }
    $('scalebar-bar').style.width = (um / umPerPx).toFixed(1) + 'px';
    $('scalebar-label').textContent = um >= 1000 ? um / 1000 + ' mm' : um + ' µm';
  }
  viewer.addHandler('update-viewport', updateOverlay);
  viewer.addHandler('resize', updateOverlay);

  // For tests and scripts: where a level-0 point lies on the page, in CSS pixels.
  view.pagePoint = (x, y) => {
    const q = viewer.viewport.pixelFromPoint(new OpenSeadragon.Point(x, y), true);
    const r = viewer.container.getBoundingClientRect();
    return { x: r.left + q.x, y: r.top + q.y };
  };
  view.layers = () => layers.map((L) => ({ id: L.id, on: !!state.on[L.id], loaded: !!items[L.id] && items[L.id].getFullyLoaded() }));
})();
