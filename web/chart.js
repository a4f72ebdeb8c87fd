// chart.js: occurrences over time for the error detail page (SVG, axis labels, hover and keyboard
// readout). The series comes from GET /api/v1/errors/{job}/{key}: [unix_seconds, increase] pairs with
// missing steps omitted, so the chart fills them with zeros.
'use strict';

(function () {
  const {h, s, fmtInt} = window.LK;
  const MAX_BARS = 720; // above this, neighbouring steps are summed so each bar stays a pixel or more

  function densify(series, nowSec) {
    const step = Math.max(1, Number(series.step_seconds) || 60);
    const pts = (series.points || []).filter((p) => Array.isArray(p) && p.length >= 2);
    let start = series.start ? Math.floor(Date.parse(series.start) / 1000) : NaN;
    if (!Number.isFinite(start)) start = pts.length ? pts[0][0] : nowSec - 3600;
    start = Math.floor(start / step) * step;
    let end = Math.max(nowSec, pts.length ? pts[pts.length - 1][0] : nowSec);
    end = Math.floor(end / step) * step;
    let n = Math.floor((end - start) / step) + 1;
    let group = 1;
    if (n > MAX_BARS) {
      group = Math.ceil(n / MAX_BARS);
      n = Math.ceil(n / group);
    }
    const vals = new Array(n).fill(0);
    for (const [t, v] of pts) {
      const i = Math.floor((t - start) / step / group);
      if (i >= 0 && i < n) vals[i] += Number(v) || 0;
    }
    return {start, step: step * group, vals};
  }

  function label(tSec) {
    const d = new Date(tSec * 1000);
    const p = (x) => String(x).padStart(2, '0');
    return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  function niceMax(m) {
    if (m <= 2) return 2;
    const e = Math.pow(10, Math.floor(Math.log10(m)));
    for (const f of [1, 2, 4, 6, 8, 10]) if (f * e >= m) return f * e;
    return 10 * e;
  }

  // Returns a <figure> with the chart and a live readout of the value under the pointer or cursor.
  window.LK.seriesChart = function seriesChart(series, opts) {
    const o = Object.assign({width: 720, height: 180, nowSec: Math.floor(Date.now() / 1000)}, opts || {});
    const {start, step, vals} = densify(series || {}, o.nowSec);
    const W = o.width, H = o.height, L = 44, R = 8, T = 8, B = 22;
    const pw = W - L - R, ph = H - T - B;
    const max = niceMax(Math.max(0, ...vals));
    const bw = pw / vals.length;
    const total = vals.reduce((a, b) => a + b, 0);
    const unit = step >= 3600 ? 'hour' : step === 60 ? 'minute' : `${step / 60} minutes`;

    const svg = s('svg', {class: 'chart', viewBox: `0 0 ${W} ${H}`,
      role: 'img', tabindex: 0,
      'aria-label': `${fmtInt(total)} occurrences, per ${unit}; use the arrow keys to read values`});
    // axes and grid
    for (const f of [0, 0.5, 1]) {
      const y = T + ph - f * ph;
      svg.appendChild(s('line', {class: 'grid', x1: L, x2: W - R, y1: y, y2: y}));
      svg.appendChild(s('text', {class: 'axis', x: L - 6, y: y + 4, 'text-anchor': 'end'}, fmtInt(f * max)));
    }
    const ticks = vals.length > 1 ? [0, Math.floor((vals.length - 1) / 2), vals.length - 1] : [0];
    ticks.forEach((i, k) => {
      const x = L + (i + 0.5) * bw;
      const anchor = k === 0 ? 'start' : k === ticks.length - 1 ? 'end' : 'middle';
      svg.appendChild(s('text', {class: 'axis', x: k === 0 ? L : k === ticks.length - 1 ? W - R : x,
        y: H - 6, 'text-anchor': anchor}, label(start + i * step)));
    });
    // bars
    const bars = s('g', {class: 'bars'});
    vals.forEach((v, i) => {
      if (v <= 0) return;
      const bh = Math.max(1, (v / max) * ph);
      bars.appendChild(s('rect', {x: (L + i * bw).toFixed(2), y: (T + ph - bh).toFixed(2),
        width: Math.max(0.8, bw - (bw > 3 ? 1 : 0)).toFixed(2), height: bh.toFixed(2)}));
    });
    svg.appendChild(bars);
    const marker = s('rect', {class: 'marker', x: L, y: T, width: Math.max(1, bw), height: ph, visibility: 'hidden'});
    svg.appendChild(marker);

    const readout = h('figcaption', {class: 'readout', 'aria-live': 'polite'},
      `${fmtInt(total)} occurrences, per ${unit}. Hover for values.`);
    let cur = -1;
    function show(i) {
      if (i < 0 || i >= vals.length) return;
      cur = i;
      marker.setAttribute('x', (L + i * bw).toFixed(2));
      marker.setAttribute('visibility', 'visible');
      const t0 = start + i * step;
      readout.textContent = `${label(t0)} – ${label(t0 + step)}: ${fmtInt(vals[i])} occurrence${vals[i] === 1 ? '' : 's'}`;
    }
    svg.addEventListener('pointermove', (ev) => {
      const r = svg.getBoundingClientRect();
      const x = ((ev.clientX - r.left) / r.width) * W;
      show(Math.floor((x - L) / bw));
    });
    svg.addEventListener('pointerleave', () => marker.setAttribute('visibility', 'hidden'));
    svg.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
        ev.preventDefault();
        if (cur < 0) cur = vals.length;
        show(Math.min(vals.length - 1, Math.max(0, cur + (ev.key === 'ArrowRight' ? 1 : -1))));
      } else if (ev.key === 'End') {
        show(vals.length - 1);
      } else if (ev.key === 'Home') {
        show(0);
      }
    });
    return h('figure', {class: 'chartbox'}, svg, readout);
  };
})();
