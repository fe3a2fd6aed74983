// The batch index: every slide with its thumbnail, score, tumour area and status, sortable; the
// likely positives first (score, highest first). Data: window.WSI_INDEX (inline, see view.cpp).
(function () {
  'use strict';
  const D = window.WSI_INDEX;
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const fmt = (v, d) => (typeof v === 'number' && isFinite(v) ? v.toFixed(d) : '–');
  document.title = D.title + ' – wsi-heatmap';
  $('title').textContent = D.title;
  const n = { done: 0, failed: 0, skipped: 0 };
  for (const s of D.slides) n[s.status] = (n[s.status] || 0) + 1;
  $('counts').textContent = D.slides.length + ' slides: ' + n.done + ' done, ' + n.failed + ' failed' +
      (n.skipped ? ', ' + n.skipped + ' skipped' : '') + '. Written by wsi-heatmap ' + D.generator + '.';
  if (D.plots && D.plots.length) {
    $('plots-section').hidden = false;
    for (const p of D.plots) {
      const a = el('a', { href: p.src, target: '_blank' });
      a.appendChild(el('img', { src: p.src, alt: p.title, class: 'plot', style: 'max-width:480px' }));
      $('plots').appendChild(a);
    }
  }
  const keys = {
    name: (s) => s.name.toLowerCase(),
    score: (s) => (typeof s.score === 'number' ? s.score : -1),  // failed slides last
    area: (s) => (typeof s.area === 'number' ? s.area : -1),
    status: (s) => s.status,
  };
  let sortKey = 'score', descending = true;
  function render() {
    const rows = D.slides.slice().sort((a, b) => {
      const x = keys[sortKey](a), y = keys[sortKey](b);
      const c = x < y ? -1 : x > y ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
      return descending ? -c : c;
    });
    const body = document.querySelector('#slides tbody');
    body.textContent = '';
    for (const s of rows) {
      const tr = el('tr', { 'data-name': s.name, 'data-status': s.status });
      const thumb = el('td');
      if (s.thumb) {
        const img = el('img', { src: s.thumb, alt: 'overlay of ' + s.name, class: 'thumb', loading: 'lazy' });
        if (s.viewer) { const a = el('a', { href: s.viewer }); a.appendChild(img); thumb.appendChild(a); } else thumb.appendChild(img);
      }
      tr.appendChild(thumb);
      const name = el('td');
      if (s.viewer) name.appendChild(el('a', { href: s.viewer, class: 'viewer-link' }, s.name));
      else name.appendChild(el('span', {}, s.name));
      name.appendChild(el('div', { class: 'note' }, s.slide));
      if (s.viewer_error) name.appendChild(el('div', { class: 'reason' }, 'no viewer: ' + s.viewer_error));
      tr.appendChild(name);
      tr.appendChild(el('td', { class: 'num' }, fmt(s.score, 3)));
      tr.appendChild(el('td', { class: 'num' }, fmt(s.area, 3)));
      const st = el('td');
      st.appendChild(el('span', { class: 'status-' + s.status }, s.status));
      if (s.reason) st.appendChild(el('div', { class: 'reason' }, s.reason));
      tr.appendChild(st);
      body.appendChild(tr);
    }
    for (const th of document.querySelectorAll('#slides th[data-key]'))
      th.setAttribute('aria-sort', th.dataset.key === sortKey ? (descending ? 'descending' : 'ascending') : 'none');
  }
  for (const th of document.querySelectorAll('#slides th[data-key]'))
    th.addEventListener('click', () => {
      if (sortKey === th.dataset.key) descending = !descending;
      else { sortKey = th.dataset.key; descending = sortKey === 'score' || sortKey === 'area'; }
      render();
    });
  render();
})();
