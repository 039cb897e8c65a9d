// chart.js draws the dashboard's small time-series charts as inline SVG.
// Redrawn from scratch each second: a chart holds at most a few thousand
// points, reduced to two per pixel column first, so a rebuild costs less
// than a millisecond and there is no state to get out of step.

const NS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// niceMax rounds up to 1, 2, 2.5 or 5 times a power of ten, so that the
// grid lines fall on round numbers.
export function niceMax(v) {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// reduce keeps, per pixel column, the first, lowest and highest point, so a
// one-sample error burst survives however many samples the chart holds.
// Points are [x, y] with y null for "no data", which is kept as a gap.
export function reduce(points, x0, x1, width) {
  if (points.length <= 2 * width) return points;
  const out = [];
  let col = null, lo = null, hi = null;
  const flush = () => {
    if (lo === null) return;
    if (lo === hi) out.push(lo);
    else if (lo[0] < hi[0]) out.push(lo, hi);
    else out.push(hi, lo);
  };
  for (const p of points) {
    const c = Math.floor(((p[0] - x0) / (x1 - x0 || 1)) * width);
    if (p[1] === null) { flush(); out.push(p); col = null; lo = hi = null; continue; }
    if (c !== col) { flush(); col = c; lo = hi = p; continue; }
    if (p[1] < lo[1]) lo = p;
    if (p[1] > hi[1]) hi = p;
  }
  flush();
  return out;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

// draw renders series into svg. opts:
//   series: [{cls, points: [[timeMs, value|null], ...]}]
//   fmt(v, top): formats a y value for the axis whose top is top
//   max: fixed top of the y axis (else rounded up from the data)
//   markers: [{t, cls, label}] vertical lines (step changes, rollbacks)
//   step: true draws steps (a weight holds until it changes)
//   x0, x1: the time span (else the data's), so that charts line up
export function draw(svg, opts) {
  const W = Math.max(200, Math.round(svg.clientWidth || 400));
  const H = Math.max(100, Math.round(svg.clientHeight || 150));
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const m = { l: 44, r: 8, t: 8, b: 20 };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const all = opts.series.flatMap(s => s.points);
  const xs = all.map(p => p[0]);
  if (xs.length === 0) {
    svg.append(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, 'no samples yet'));
    return;
  }
  let x0 = opts.x0 ?? Math.min(...xs), x1 = opts.x1 ?? Math.max(...xs);
  if (x1 - x0 < 10000) x0 = x1 - 10000; // at least ten seconds wide
  const ys = all.map(p => p[1]).filter(v => v !== null && Number.isFinite(v));
  const top = opts.max || niceMax(Math.max(0, ...ys));
  const X = t => m.l + ((t - x0) / (x1 - x0)) * pw;
  const Y = v => m.t + ph - (Math.min(v, top) / top) * ph;

  // Five bands: a top of 1, 2, 2.5 or 5 × 10ⁿ divides into round steps.
  for (let i = 0; i <= 5; i++) {
    const v = (top * i) / 5, y = Y(v);
    svg.append(el('line', { x1: m.l, x2: W - m.r, y1: y, y2: y, class: i ? 'grid' : 'axis' }));
    svg.append(el('text', { x: m.l - 4, y: y + 4, 'text-anchor': 'end', class: 'tick' }, opts.fmt(v, top)));
  }
  svg.append(el('text', { x: m.l, y: H - 4, class: 'tick' }, clock(x0)));
  svg.append(el('text', { x: W - m.r, y: H - 4, 'text-anchor': 'end', class: 'tick' }, clock(x1)));

  for (const mk of opts.markers || []) {
    if (mk.t < x0 || mk.t > x1) continue;
    const x = X(mk.t);
    const line = el('line', { x1: x, x2: x, y1: m.t, y2: m.t + ph, class: 'marker ' + (mk.cls || '') });
    line.append(el('title', {}, mk.label));
    svg.append(line);
  }

  for (const s of opts.series) {
    const pts = reduce(s.points, x0, x1, pw);
    let d = '', n = 0, first = null;
    const dots = [];
    const end = () => { if (n === 1 && !opts.step) dots.push(first); n = 0; };
    for (const [t, v] of pts) {
      if (v === null || !Number.isFinite(v)) { end(); continue; }
      const x = X(t).toFixed(1), y = Y(v).toFixed(1);
      if (n === 0) { d += `M${x} ${y}`; first = [x, y]; }
      else if (opts.step) d += `H${x}V${y}`;
      else d += `L${x} ${y}`;
      n++;
    }
    if (opts.step && n > 0) d += `H${(m.l + pw).toFixed(1)}`;
    end();
    if (d) svg.append(el('path', { d, class: 'line ' + s.cls }));
    // A lone point between gaps has no length to stroke: mark it.
    for (const [cx, cy] of dots) svg.append(el('circle', { cx, cy, r: 2.5, class: 'dot ' + s.cls }));
  }
}
