// dom.js: the only way lookout's UI puts things on the page. Every value that comes from a scraped
// payload (keys, classes, messages, stack traces, headers, labels) is untrusted: it becomes a text node
// or an attribute set through the DOM, never markup. Nothing in the UI assigns innerHTML.
'use strict';

const LK = {};

// h('a', {href: '#/x', class: 'k', onclick: fn}, 'text', childNode, [more]) -> element.
LK.h = function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  LK.setProps(el, props);
  LK.append(el, kids);
  return el;
};

const SVGNS = 'http://www.w3.org/2000/svg';
LK.s = function s(tag, props, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  LK.setProps(el, props);
  LK.append(el, kids);
  return el;
};

LK.setProps = function setProps(el, props) {
  if (!props) return;
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'text') {
      el.textContent = String(v);
    } else if (k === 'href' || k === 'src') {
      // Links are built by the UI itself; refuse anything that is not same-origin so that no
      // javascript: or data: URL can ever be produced from data.
      const u = String(v);
      if (/^(#|\/(?!\/)|\?)/.test(u)) el.setAttribute(k, u);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
};

LK.append = function append(el, kids) {
  for (const kid of kids) {
    if (kid === undefined || kid === null || kid === false) continue;
    if (Array.isArray(kid)) LK.append(el, kid);
    else if (kid instanceof Node) el.appendChild(kid);
    else el.appendChild(document.createTextNode(String(kid)));
  }
};

// ---- numbers and times ----
LK.fmtInt = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));

LK.parseTime = (s) => (s ? new Date(s) : null);

LK.fmtAbs = function fmtAbs(d) {
  if (!d) return '–';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
};

LK.fmtAgo = function fmtAgo(d, now) {
  if (!d) return 'never';
  let s = Math.round(((now || Date.now()) - d.getTime()) / 1000);
  if (s < 0) s = 0;
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h ago`;
};

// <time> with a relative text and the absolute time on hover.
LK.timeEl = function timeEl(iso) {
  const d = LK.parseTime(iso);
  if (!d) return LK.h('span', {class: 'muted'}, 'never');
  return LK.h('time', {datetime: iso, title: LK.fmtAbs(d)}, LK.fmtAgo(d));
};

// ---- API ----
// The route prefix (--web.route-prefix, "/lookout" or ""): the UI page is always served at prefix + "/",
// so it is the page's path without its last segment. Every absolute path the UI builds goes through LK.url.
LK.base = location.pathname.replace(/\/[^/]*$/, '');
LK.url = (path) => LK.base + path;
LK.api = async function api(path, opts) {
  let r;
  try {
    r = await fetch(LK.url(path), Object.assign({headers: {Accept: 'application/json'}, cache: 'no-store'}, opts || {}));
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new Error(`lookout is not reachable (${e.message})`);
  }
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    throw new Error(`${path}: HTTP ${r.status}, not JSON`);
  }
  if (!body || body.status !== 'success') {
    const err = new Error((body && body.error) || `HTTP ${r.status}`);
    err.status = r.status;
    err.errorType = body && body.errorType;
    throw err;
  }
  return body.data;
};

// Path segment for a job or key: encodeURIComponent turns '/' into %2F, which the API accepts.
LK.enc = encodeURIComponent;
LK.dec = function dec(s) {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    return s;
  }
};

LK.errorPath = (job, key) => `/api/v1/errors/${LK.enc(job)}/${LK.enc(key)}`;

// ---- small SVG sparkline (24 hourly values, oldest first) ----
LK.sparkline = function sparkline(values, opts) {
  const o = Object.assign({w: 96, h: 22, label: 'per hour, last 24 hours'}, opts || {});
  const vals = Array.isArray(values) ? values.map((v) => Number(v) || 0) : [];
  const total = vals.reduce((a, b) => a + b, 0);
  const svg = LK.s('svg', {class: 'spark', width: o.w, height: o.h, viewBox: `0 0 ${o.w} ${o.h}`,
    role: 'img', 'aria-label': `${LK.fmtInt(total)} occurrences ${o.label}`});
  svg.appendChild(LK.s('title', null, `${LK.fmtInt(total)} occurrences ${o.label}`));
  if (vals.length === 0) return svg;
  const max = Math.max(1, ...vals);
  const bw = o.w / vals.length;
  vals.forEach((v, i) => {
    if (v <= 0) return;
    const bh = Math.max(1.5, (v / max) * (o.h - 2));
    svg.appendChild(LK.s('rect', {x: (i * bw + 0.5).toFixed(1), y: (o.h - bh).toFixed(1),
      width: Math.max(1, bw - 1).toFixed(1), height: bh.toFixed(1)}));
  });
  svg.appendChild(LK.s('line', {class: 'base', x1: 0, x2: o.w, y1: o.h - 0.5, y2: o.h - 0.5}));
  return svg;
};

// ---- curl ----
// Headers whose values are credentials: masked in the headers table and in the curl command.
LK.sensitiveHeader = (name) =>
  /^(authorization|proxy-authorization|cookie|set-cookie)$/i.test(name) ||
  /(auth|token|secret|passw|api[-_]?key|session|credential|signature)/i.test(name);
LK.MASK = '********';

LK.shellQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

LK.curlCommand = function curlCommand(http) {
  const parts = ['curl'];
  const method = (http.request_method || 'GET').toUpperCase();
  if (method !== 'GET') parts.push('-X', LK.shellQuote(method));
  parts.push(LK.shellQuote(http.request_url || ''));
  const headers = http.request_headers || {};
  for (const name of Object.keys(headers).sort()) {
    const v = LK.sensitiveHeader(name) ? LK.MASK : headers[name];
    parts.push('-H', LK.shellQuote(`${name}: ${v}`));
  }
  if (http.request_body) parts.push('--data-raw', LK.shellQuote(http.request_body));
  return parts.join(' ');
};

window.LK = LK;
