// Browser tests of lookout's web UI: Debian's chromium driven by playwright-core. Prints TAP lines
// ("ok - name" / "not ok - name") that tests/run.sh counts, and "# perf ..." lines with the timings.
// Everything runs against the real ./lookout scraping real exception targets (tests/fakes/ui_targets.py,
// started by tests/integration/ui_browser.sh).
// Env:
//   LOOKOUT_UI_URL       a running ./lookout (--web.enable-lifecycle) scraping the targets built from
//                        tests/fixtures/ui/errors.json every second
//   LOOKOUT_UI_CONTROL   the targets' control URL (POST /errors: a target reports one more occurrence;
//                        POST /targets: a new target, then POST /-/reload to lookout)
//   LOOKOUT_UI_EMPTY_URL a running ./lookout without any job (empty states)
//   LOOKOUT_UI_BULK_URL  a running ./lookout that ingested 100,000 errors in job "big" (performance figures)
//   LOOKOUT_UI_PREFIX_URL the root URL of a ./lookout run with --web.route-prefix=/lookout, scraping the
//                        same targets, behind a reverse proxy (optional)
//   LOOKOUT_UI_SHOTS     directory for screenshots (optional)
//   CHROMIUM             browser binary (default /usr/bin/chromium)
import {chromium} from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BASE = process.env.LOOKOUT_UI_URL;
const BULK = process.env.LOOKOUT_UI_BULK_URL;
const SHOTS = process.env.LOOKOUT_UI_SHOTS;
const CONTROL = process.env.LOOKOUT_UI_CONTROL;
const EMPTY = process.env.LOOKOUT_UI_EMPTY_URL;
const PREFIXED = process.env.LOOKOUT_UI_PREFIX_URL;
if (!BASE) {
  console.log('not ok - LOOKOUT_UI_URL is not set');
  process.exit(1);
}

let failures = 0;
async function test(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    failures++;
    console.log(`not ok - ${name}`);
    for (const line of String(e && e.stack ? e.stack : e).split('\n').slice(0, 8)) console.log(`#   ${line}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}
function eq(a, b, msg) {
  if (a !== b) throw new Error(`${msg}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}

// The targets change what they expose (the next scrape, within 1 s, brings it into lookout).
async function control(p, body) {
  const r = await fetch(CONTROL + p, {method: 'POST', body: JSON.stringify(body || {}),
    headers: {'Content-Type': 'application/json'}});
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}
async function reload() {
  const r = await fetch(`${BASE}/-/reload`, {method: 'POST'});
  if (!r.ok) throw new Error(`/-/reload: HTTP ${r.status}`);
}
async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
// Waits until fn() gives want (the page settles after a filter change); fails with the last value seen.
async function eventuallyEq(fn, want, msg, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const got = await fn();
    if (got === want) return;
    if (Date.now() > end) throw new Error(`${msg}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
async function apiGet(base, p) {
  const r = await fetch(base + p);
  return (await r.json()).data;
}

// The oracle for what lists must show: the Periskop payloads the targets served (read from the targets
// themselves, before any test changes them), never lookout's own API. An error of a job is every
// aggregate any of its targets serves, seen with the label sets of those targets; the search semantics
// are store.h's (each word a case-insensitive substring of the key or of one field of one sample).
async function served(job) {
  const st = await (await fetch(`${CONTROL}/state`)).json();
  const byKey = new Map();
  for (const t of st.targets.filter((x) => x.job === job)) {
    const p = await (await fetch(`http://127.0.0.1:${t.port}/`)).json();
    for (const a of p.aggregated_errors) {
      let e = byKey.get(a.aggregation_key);
      if (!e) byKey.set(a.aggregation_key, (e = {key: a.aggregation_key, severity: a.severity, labels: [], samples: []}));
      e.labels.push({job, ...t.labels});
      e.samples.push(...a.latest_errors);
    }
  }
  return [...byKey.values()];
}
function fieldsOf(e) {
  const out = [e.key];
  const err = (x) => {
    if (!x) return;
    out.push(x.class || '', x.message || '', ...(x.stacktrace || []));
    err(x.cause);
  };
  for (const s of e.samples) {
    err(s.error);
    out.push(s.uuid || '');
    const h = s.http_context;
    if (h) {
      out.push(h.request_method || '', h.request_url || '', h.request_body || '');
      for (const [k, v] of Object.entries(h.request_headers || {})) out.push(k, v);
    }
  }
  return out.map((f) => String(f).toLowerCase());
}
// expected keys, sorted: f(error) -> bool
function expectKeys(errors, f) {
  return errors.filter(f).map((e) => e.key).sort();
}
const hasWords = (...words) => (e) => words.every((w) => fieldsOf(e).some((f) => f.includes(w.toLowerCase())));
const hasLabels = (m) => (e) => e.labels.some((ls) => Object.entries(m).every(([k, v]) => ls[k] === v));
async function shownKeys() {
  return (await page.locator('tr.err-row a.key').allInnerTexts()).map((k) => k.trim()).sort();
}
const SERVED_API = CONTROL ? await served('api') : [];

async function shot(page, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, {recursive: true});
  await page.screenshot({path: path.join(SHOTS, `${name}.png`)});
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lookout-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: {width: 1280, height: 800},
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
// Anything that would show an XSS or a CSP problem is recorded on the page itself.
await ctx.addInitScript(() => {
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective));
});
const page = ctx.pages()[0] || (await ctx.newPage());
const dialogs = [];
page.on('dialog', (d) => {
  dialogs.push(d.message());
  d.dismiss().catch(() => {});
});
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));

const rows = () => page.locator('tr.err-row');
async function renderCount() {
  return page.evaluate(() => window.__lookout.renders.length);
}
async function waitRender(after) {
  await page.waitForFunction((n) => window.__lookout && window.__lookout.renders.length > n, after, {timeout: 10000});
}
async function open(hash, query = '?refresh=1') {
  await page.goto('about:blank');
  await page.goto(`${BASE}/${query}${hash}`);
  await page.waitForFunction(() => window.__lookout && window.__lookout.renders.length > 0, null, {timeout: 10000});
}

await test('./lookout serves the embedded UI: CSP, no inline script, versioned assets', async () => {
  const r = await fetch(`${BASE}/`);
  eq(r.headers.get('content-security-policy'), "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:", 'CSP');
  const html = await r.text();
  assert(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html), 'inline <script> in index.html');
  assert(!/\son[a-z]+=/i.test(html), 'inline event handler in index.html');
  const statuses = [];
  const onResp = (x) => {
    const u = new URL(x.url());
    if (u.pathname.startsWith('/static/')) statuses.push(`${x.status()} ${u.pathname}${u.search ? '?v' : ''}`);
  };
  page.on('response', onResp);
  await page.goto(`${BASE}/`);
  await page.waitForSelector('tr.job-row');
  page.off('response', onResp);
  assert(statuses.length >= 4 && statuses.every((x) => x.startsWith('200 ') && x.endsWith('?v')), `assets: ${statuses}`);
});

await test('overview lists every job with counts, health and sparkline', async () => {
  await open('#/');
  const jobRows = page.locator('tr.job-row');
  const n = await jobRows.count();
  assert(n >= 5, `want >= 5 jobs, got ${n}`);
  const api = page.locator('tr.job-row[data-job="api"]');
  eq(SERVED_API.length, 68, 'the fixture serves 68 errors of job api');
  eq(await api.locator('td').nth(0).innerText(), '68', 'open count: every error the targets of job api serve');
  assert((await api.innerText()).includes('1 down'), 'down target shown');
  assert((await page.locator('tr.job-row[data-job="batch"]').innerText()).includes('no targets'), 'batch without targets');
  eq(await api.locator('svg.spark').count(), 1, 'sparkline');
  eq(await page.locator('header a[href="targets"]').count(), 1, 'Targets link');
  eq(await page.locator('header a[href="service-discovery"]').count(), 1, 'SD link');
  await shot(page, 'overview');
});

await test('header links reach /targets and /service-discovery', async () => {
  await page.click('header a[href="targets"]');
  await page.waitForURL(/\/targets$/);
  assert((await page.locator('h1').innerText()).includes('Targets'), 'targets page');
  await page.goBack();
  await page.click('header a[href="service-discovery"]');
  await page.waitForURL(/\/service-discovery$/);
  await page.goBack();
});

await test('job link opens its error list; search narrows it as you type and lands in the URL', async () => {
  await open('#/');
  await page.click('tr.job-row[data-job="api"] th a');
  await page.waitForSelector('tr.err-row');
  eq(await rows().count(), 50, 'first page size');
  const before = await page.locator('.summary').innerText();
  const n0 = await renderCount();
  await page.locator('#search').pressSequentially('invoice', {delay: 30});
  await page.waitForFunction(() => window.__lookout.renders.some((r) => r.q === 'invoice'));
  const n = await rows().count();
  assert(n > 0 && n < 50, `narrowed to ${n} rows (before: ${before})`);
  const keys = await page.locator('tr.err-row a.key').allInnerTexts();
  assert(keys.includes('*url.Error@9f3c1a07'), 'match in message/stack');
  assert(keys.includes('billing/invoice-timeout'), 'match in key');
  assert(page.url().includes('q=invoice'), `URL holds the query: ${page.url()}`);
  assert((await renderCount()) - n0 <= 3, 'debounced: not one request per keystroke');
  await shot(page, 'errors-search');
  // every word must match, in any field or sample: "invoices" (message) and "client.go" (stack trace)
  await page.locator('#search').pressSequentially(' client.go', {delay: 30});
  await page.waitForFunction(() => window.__lookout.renders.some((r) => r.q === 'invoice client.go'));
  const keys2 = await page.locator('tr.err-row a.key').allInnerTexts();
  eq((await shownKeys()).join(','), expectKeys(SERVED_API, hasWords('invoice', 'client.go')).join(','),
    'the served errors with both words');
  eq(keys2.join(','), '*url.Error@9f3c1a07', 'only the one with both words');
  assert(keys2.includes('*url.Error@9f3c1a07') && !keys2.includes('billing/invoice-timeout'), `words ANDed: ${keys2}`);
});

await test('search language: syntax hints insert terms, fields select the served errors, a bad query is named at the box', async () => {
  await open('#/api/errors');
  await page.waitForSelector('tr.err-row');
  await page.click('#search-syntax summary');
  await page.click('#search-syntax button[data-term="severity:error"]');
  await page.waitForFunction(() => window.__lookout.renders.some((r) => r.view === 'list' && r.q === 'severity:error'));
  assert(page.url().includes('q=severity%3Aerror'), `URL holds the query: ${page.url()}`);
  const want = expectKeys(SERVED_API, (e) => e.severity === 'error');
  eq(want.length, 29, 'the fixture serves 29 errors of severity error in job api');
  eq((await shownKeys()).join(','), want.join(','), 'the served errors of severity error');
  assert(!(await page.locator('.sevcell').allInnerTexts()).some((t) => !/error/i.test(t)), 'only severity error');
  await page.fill('#search', '');
  await page.locator('#search').pressSequentially('-severity:error is:closed', {delay: 20});
  await page.waitForFunction(() => !document.getElementById('search-error').hidden);
  eq(await page.locator('#search-error').innerText(),
    'invalid q: unknown is: value "closed" (expected open, resolved or regressed)', 'the problem named');
  await page.fill('#search', '-severity:error');
  await page.waitForFunction(() => document.getElementById('search-error').hidden);
  const want2 = expectKeys(SERVED_API, (e) => e.severity !== 'error');
  eq(want2.length, 39, 'and 39 of other severities');
  await until('negated rows', async () => (await shownKeys()).join(',') === want2.join(','));
  await page.click('#clear-filters');
});

await test('error detail shows the error_relabel_configs steps of its key', async () => {
  await open('#/api/errors');
  await page.waitForSelector('tr.err-row');
  const key = (await page.locator('tr.err-row a.key').first().innerText()).trim();
  await page.locator('tr.err-row a.key').first().click();
  await page.waitForSelector('#relabel-steps');
  await page.click('#relabel-steps summary');
  await page.waitForSelector('#relabel-steps .steps-result');
  eq(await page.locator('#relabel-steps li').count(), 1, 'one rule');
  assert((await page.locator('#relabel-steps li code').innerText()).startsWith('drop [__class__] =~ NeverRaised.*'), 'the rule');
  const res = await page.locator('#relabel-steps .steps-result').innerText();
  assert(res.startsWith(`Result: key ${key}, severity `), `kept under its own key: ${res}`);
});

await test('filters combine (severity + status + label) and the URL restores them', async () => {
  await open('#/api/errors');
  await page.check('label.chip.sev-warning input');
  await page.waitForFunction(() => location.hash.includes('severity=warning'));
  await page.selectOption('#status', 'open');
  await page.fill('#labels', 'namespace=prod pod=api-7d9f8-x2k4q');
  await page.press('#labels', 'Enter');
  await page.waitForFunction(() => location.hash.includes('label=namespace'));
  await page.waitForFunction(() => window.__lookout.renders.at(-1).t > 0);
  // every served error is open here (nothing resolved yet)
  const warning = (e) => e.severity === 'warning';
  const want = expectKeys(SERVED_API, (e) => warning(e) && hasLabels({namespace: 'prod', pod: 'api-7d9f8-x2k4q'})(e));
  const prodOnly = expectKeys(SERVED_API, (e) => warning(e) && hasLabels({namespace: 'prod'})(e));
  eq(want.length, 10, 'the fixture serves 10 warnings of job api from that pod');
  eq(prodOnly.length, 19, 'and 19 from namespace prod');
  await eventuallyEq(async () => (await shownKeys()).join(','), want.join(','), 'the served warnings of that pod');
  const keys = await page.locator('tr.err-row a.key').allInnerTexts();
  for (const s of await page.locator('tr.err-row .sev').allInnerTexts()) eq(s, 'warning', 'severity');
  for (const s of await page.locator('tr.err-row .status').allInnerTexts()) assert(s === 'open' || s === 'regressed', `status ${s}`);
  const shared = page.url();
  await page.goto('about:blank');
  await page.goto(shared);
  await page.waitForSelector('tr.err-row');
  eq(await page.locator('label.chip.sev-warning input').isChecked(), true, 'severity restored');
  eq(await page.inputValue('#status'), 'open', 'status restored');
  eq(await page.inputValue('#labels'), 'namespace=prod pod=api-7d9f8-x2k4q', 'labels restored');
  eq((await page.locator('tr.err-row a.key').allInnerTexts()).join(','), keys.join(','), 'same rows from the URL');
  // two severities at once (ORed)
  await page.check('label.chip.sev-info input');
  await page.waitForFunction(() => location.hash.includes('severity=info'));
  const both = expectKeys(SERVED_API, (e) => (warning(e) || e.severity === 'info') &&
    hasLabels({namespace: 'prod', pod: 'api-7d9f8-x2k4q'})(e));
  eq(both.length, 14, 'the fixture serves 14 warnings and infos of job api from that pod');
  await eventuallyEq(async () => (await shownKeys()).join(','), both.join(','),
    'two severities: the served warnings and infos of that pod');
  await page.click('#clear-filters');
  await page.waitForFunction(() => !location.hash.includes('severity'));
});

await test('sort by count and cursor paging', async () => {
  await open('#/api/errors?sort=count');
  await page.waitForSelector('tr.err-row');
  eq(await page.locator('tr.err-row a.key').first().innerText(), 'RateLimited@00ff00ff', 'highest count first');
  const counts = (await page.locator('tr.err-row td.num').allInnerTexts()).map((s) => Number(s.replace(/,/g, '')));
  for (let i = 1; i < counts.length; i++) assert(counts[i - 1] >= counts[i], 'descending counts');
  const first = await page.locator('tr.err-row a.key').allInnerTexts();
  const n0 = await renderCount();
  await page.click('#next-page');
  await waitRender(n0);
  const second = await page.locator('tr.err-row a.key').allInnerTexts();
  assert(second.length > 0 && !second.some((k) => first.includes(k)), 'next page has other errors');
  assert(page.url().includes('cursor='), 'cursor in URL');
  const n1 = await renderCount();
  await page.click('text=‹ Previous');
  await waitRender(n1);
  eq((await page.locator('tr.err-row a.key').allInnerTexts()).join(), first.join(), 'previous page');
});

await test('detail shows occurrences, causes, labels, chart and HTTP context with masked curl', async () => {
  await open('#/api/errors');
  await page.click('a.key:text-is("*url.Error@9f3c1a07")');
  await page.waitForSelector('.detail h1.key');
  eq(await page.locator('h1.key').innerText(), '*url.Error@9f3c1a07', 'key');
  eq(await page.locator('#count-value').innerText(), '137', 'count');
  eq(await page.locator('.occ-pager .pos').innerText(), '1 of 2', 'pager');
  assert((await page.locator('.cause .cls').innerText()) === 'context.deadlineExceededError', 'cause chain');
  assert((await page.locator('pre.stack').first().innerText()).includes('/app/billing/client.go:88'), 'stack trace');
  eq(await page.locator('.grid.labels tbody tr').count(), 3, 'three label sets');
  assert((await page.locator('svg.chart .bars rect').count()) > 0, 'chart bars');
  const headers = await page.locator('.grid.headers').innerText();
  assert(headers.includes('X-Request-Id') && !headers.includes('eyJhbGci') && !headers.includes('abc123'), 'headers masked');
  const curl = await page.locator('pre.curl').innerText();
  assert(curl.startsWith("curl 'http://api.internal/v1/customers/4711/invoices?limit=20'"), curl);
  assert(curl.includes("-H 'Authorization: ********'") && curl.includes("-H 'Cookie: ********'"), curl);
  assert(curl.includes("-H 'Accept: application/json'"), curl);
  assert(!curl.includes('eyJ') && !curl.includes('abc123'), 'no credential in curl');
  // hover on the chart shows a value
  const box = await page.locator('svg.chart').boundingBox();
  await page.mouse.move(box.x + box.width - 12, box.y + box.height / 2);
  assert(/occurrence/.test(await page.locator('.readout').innerText()), 'hover readout');
  await shot(page, 'detail');
  await page.locator('#occurrences').scrollIntoViewIfNeeded();
  await shot(page, 'detail-occurrence');
  await page.click('#occ-older');
  eq(await page.locator('.occ-pager .pos').innerText(), '2 of 2', 'older occurrence');
  assert(page.url().includes('occ='), 'occurrence in URL');
  eq(await page.locator('.http').count(), 0, 'no HTTP context on the older one');
  // POST body and non-GET method reproduce in curl
  await open('#/api/errors/' + encodeURIComponent('*json.SyntaxError@1a2b3c4d'));
  const curl2 = await page.locator('pre.curl').innerText();
  assert(curl2.includes("-X 'POST'") && curl2.includes(`--data-raw '{"sku": "A-1", "qty": 2,}'`), curl2);
  assert(curl2.includes("X-Api-Key: ********"), 'api key masked');
});

await test('resolve, then a new occurrence re-opens it as regressed (auto refresh), then re-open', async () => {
  const key = 'billing/invoice-timeout';
  await open('#/api/errors/' + encodeURIComponent(key));
  await page.click('#resolve');
  await page.waitForSelector('#reopen');
  eq(await page.locator('#status-value').innerText(), 'resolved', 'resolved');
  const d = await apiGet(BASE, '/api/v1/errors/api/' + encodeURIComponent(key));
  eq(d.status, 'resolved', 'API agrees');
  await control('/errors', {job: 'api', key, class: '*errors.errorString', message: 'invoice service timed out again',
    severity: 'error', stacktrace: ['main.(*Billing).Invoice'], count: 2});
  await page.waitForFunction(() => document.querySelector('#status-value').innerText === 'regressed', null, {timeout: 8000});
  eq(await page.locator('#count-value').innerText(), '43', 'count increased');
  await page.click('#resolve');
  await page.waitForSelector('#reopen');
  await page.click('#reopen');
  await page.waitForSelector('#resolve');
  eq(await page.locator('#status-value').innerText(), 'open', 're-opened');
});

await test('Periskop permalink with a / in the key (raw and encoded)', async () => {
  for (const h of ['#/api/errors/billing/invoice-timeout', '#/api/errors/billing%2Finvoice-timeout']) {
    await open(h);
    await page.waitForSelector('.detail h1.key');
    eq(await page.locator('h1.key').innerText(), 'billing/invoice-timeout', h);
  }
  await open('#/api/errors/no-such-key');
  assert((await page.locator('.empty h2').innerText()).includes('not found'), 'unknown key explains');
});

await test('phone width and dark scheme render', async () => {
  await page.setViewportSize({width: 390, height: 844});
  await open('#/api/errors');
  await page.waitForSelector('tr.err-row');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 1, `no horizontal page overflow on a phone (${overflow}px)`);
  await shot(page, 'phone-errors');
  await page.setViewportSize({width: 1280, height: 800});
  await page.emulateMedia({colorScheme: 'dark'});
  await page.goto(`${BASE}/?refresh=1#/billing/errors/ValueError%405d41402a`);
  await page.waitForSelector('.detail h1.key');
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert(bg !== 'rgb(247, 247, 248)', `dark background (${bg})`);
  await shot(page, 'detail-dark');
  await page.emulateMedia({colorScheme: 'light'});
});

await test('auto refresh picks up a new error and keeps scroll position and the open occurrence', async () => {
  await open('#/api/errors');
  const upd0 = await page.locator('#updated').getAttribute('data-at');
  await control('/errors', {job: 'api', key: 'FreshError@0badf00d', class: 'FreshError', message: 'just now',
    severity: 'error', stacktrace: []});
  await page.waitForSelector('a.key:text-is("FreshError@0badf00d")', {timeout: 8000});
  assert((await page.locator('#updated').getAttribute('data-at')) !== upd0, 'header refreshed time');
  // detail: open an older occurrence, scroll, let a new occurrence arrive
  await open('#/api/errors/' + encodeURIComponent('*url.Error@9f3c1a07'));
  await page.click('#occ-older');
  const uuid = await page.locator('article.occ').getAttribute('data-uuid');
  await page.setViewportSize({width: 1280, height: 500});
  await page.evaluate(() => window.scrollTo(0, 400));
  const y0 = await page.evaluate(() => window.scrollY);
  await control('/errors', {job: 'api', key: '*url.Error@9f3c1a07', class: '*url.Error', message: 'newest',
    severity: 'error', stacktrace: []});
  await page.waitForFunction(() => document.querySelector('#count-value').innerText === '138', null, {timeout: 8000});
  eq(await page.locator('article.occ').getAttribute('data-uuid'), uuid, 'same occurrence open');
  eq(await page.locator('.occ-pager .pos').innerText(), '3 of 3', 'pager shifted by the new one');
  eq(await page.evaluate(() => window.scrollY), y0, 'scroll kept');
  await page.setViewportSize({width: 1280, height: 800});
});

await test('XSS payloads in keys, classes, messages, stacks, causes, headers, labels are inert', async () => {
  const p = (n) => `<img src=x onerror="window.__xss=${n}"><script>window.__xss=${n}</script>"'><svg onload=window.__xss=${n}>`;
  const key = `xss"><img src=x onerror=window.__xss=1>/'';!--"<XSS>=&{()}`;
  const evilJob = `<b>job${p(17)}`;
  // A target of job api with hostile label values, and a job whose name is a payload: added to the
  // configuration and reloaded, as an operator would.
  await control('/targets', {job: 'api', labels: {instance: p(9), x: p(10)}});
  await control('/targets', {job: evilJob, labels: {instance: 'evil:1'}});
  await reload();
  await control('/errors', {job: 'api', instance: p(9), key, class: p(2), message: p(3), severity: 'error',
    stacktrace: [p(4), 'javascript:window.__xss=5'],
    cause: {class: p(6), message: p(7), stacktrace: [p(8)], cause: null},
    http_context: {request_method: p(11), request_url: `javascript:window.__xss=12//${p(12)}`,
      request_headers: {[`X-Evil"><script>window.__xss=13</script>`]: p(14), Accept: p(15)}, request_body: p(16)}});
  await control('/errors', {job: evilJob, key: p(18), class: p(19), message: 'm', severity: 'warning'});
  await until('the hostile errors to be scraped', async () =>
    (await apiGet(BASE, '/api/v1/errors?q=xss&job=api')).total > 0 &&
    (await apiGet(BASE, `/api/v1/errors?job=${encodeURIComponent(evilJob)}`)).total > 0, 15000);
  await open('#/');
  await open('#/api/errors?q=xss');
  await page.waitForSelector('tr.err-row');
  await page.click('tr.err-row a.key');
  await page.waitForSelector('.detail h1.key');
  eq(await page.locator('h1.key').innerText(), key, 'key shown as text');
  assert((await page.locator('.detail-head .cls').innerText()).includes('<img src=x'), 'class shown as text');
  assert((await page.locator('pre.stack').first().innerText()).includes('<script>'), 'stack shown as text');
  assert((await page.locator('pre.curl').innerText()).includes('X-Evil'), 'curl shows header name as text');
  assert((await page.locator('.grid.labels').innerText()).includes('<img src=x'), 'label values shown as text');
  await shot(page, 'xss-inert');
  const bad = await page.evaluate(() => ({
    xss: window.__xss,
    scripts: document.querySelectorAll('main script, main img[src="x"], main svg[onload], [onerror], [onload]').length,
    jsLinks: [...document.querySelectorAll('a[href]')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href'))).length,
  }));
  eq(bad.xss, undefined, 'no payload ran');
  eq(bad.scripts, 0, 'no injected elements');
  eq(bad.jsLinks, 0, 'no javascript: links');
  await open('#/');
  await page.waitForSelector('tr.job-row');
  await page.click('tr.job-row a:has-text("<b>job")');
  await page.waitForSelector('tr.err-row');
  eq(await page.evaluate(() => window.__xss), undefined, 'job name inert');
  eq(dialogs.length, 0, `no dialogs: ${dialogs}`);
});

await test('keyboard: / focuses search, links and buttons reachable with Tab', async () => {
  await open('#/api/errors');
  await page.locator('body').click({position: {x: 5, y: 300}});
  await page.keyboard.press('/');
  eq(await page.evaluate(() => document.activeElement.id), 'search', 'search focused');
  await page.keyboard.press('Escape');
  await page.evaluate(() => document.activeElement.blur());
  const seen = new Set();
  for (let i = 0; i < 25; i++) {
    await page.keyboard.press('Tab');
    seen.add(await page.evaluate(() => document.activeElement.className || document.activeElement.tagName));
  }
  assert(seen.has('key'), `error links reachable by Tab: ${[...seen]}`);
});

await test('empty states explain what to configure', async () => {
  // a lookout without jobs
  await page.goto('about:blank');
  await page.goto(`${EMPTY}/?refresh=1#/`);
  await page.waitForSelector('.empty');
  assert((await page.locator('.empty').innerText()).includes('scrape_configs'), 'overview empty state');
  await shot(page, 'empty');
  // a job without targets, hence without errors
  await open('#/batch/errors');
  await page.waitForSelector('.empty');
  assert((await page.locator('.empty').innerText()).includes('Targets'), 'list empty state points to targets');
});

if (PREFIXED) {
  await test('under --web.route-prefix=/lookout: redirect, assets, API, job list, server pages; nothing outside the prefix', async () => {
    const root = new URL(PREFIXED);
    const paths = [];
    const onReq = (x) => {
      const u = new URL(x.url());
      if (u.host === root.host) paths.push(u.pathname);
    };
    page.on('request', onReq);
    await page.goto('about:blank');
    await page.goto(`${PREFIXED}/`); // the server root redirects to /lookout/
    eq(new URL(page.url()).pathname, '/lookout/', 'redirected into the prefix');
    await page.waitForSelector('tr.job-row[data-job="api"]');
    await page.click('tr.job-row[data-job="api"] th a');
    await page.waitForSelector('tr.err-row');
    assert((await page.locator('tr.err-row').count()) > 0, 'errors listed through /lookout/api/v1/errors');
    await page.click('header a[href="targets"]');
    await page.waitForURL(/\/lookout\/targets$/);
    assert((await page.locator('h1').innerText()).includes('Targets'), 'targets page under the prefix');
    await page.click('nav a.brand');
    await page.waitForURL(/\/lookout\/$/);
    await page.waitForSelector('tr.job-row');
    page.off('request', onReq);
    const outside = paths.filter((p) => p !== '/' && !p.startsWith('/lookout/'));
    eq(JSON.stringify(outside), '[]', 'requests outside the prefix');
    assert(paths.some((p) => p.startsWith('/lookout/static/')) && paths.some((p) => p.startsWith('/lookout/api/v1/')),
      `assets and API under the prefix: ${[...new Set(paths)].join(' ')}`);
  });
}

await test('no CSP violations and no script errors', async () => {
  eq(JSON.stringify(await page.evaluate(() => window.__cspViolations)), '[]', 'CSP violations');
  eq(JSON.stringify(pageErrors), '[]', 'page errors');
});

// ---------------------------------------------------------------- performance (figures, no assertion)
if (BULK) {
  await test('performance with 100,000 errors (figures below)', async () => {
    const total = (await apiGet(BULK, '/api/v1/errors?job=big&limit=1')).total;
    assert(total >= 100000, `bulk server has ${total} errors`);
    const cold = [], nav = [], search = [], searchApi = [], searchRender = [];
    for (let i = 0; i < 3; i++) {
      await page.goto('about:blank');
      await page.goto(`${BULK}/?refresh=600#/big/errors`);
      await page.waitForFunction(() => window.__lookout && window.__lookout.renders.some((r) => r.view === 'list'));
      cold.push(await page.evaluate(() => window.__lookout.renders.find((r) => r.view === 'list').t));
      await page.evaluate(() => (location.hash = '#/'));
      await page.waitForFunction(() => window.__lookout.renders.at(-1).view === 'overview');
      const t = await page.evaluate(() => {
        window.__navT = performance.now();
        location.hash = '#/big/errors';
        return window.__navT;
      });
      await page.waitForFunction((t0) => window.__lookout.renders.some((r) => r.view === 'list' && r.t > t0), t);
      nav.push(await page.evaluate((t0) => window.__lookout.renders.find((r) => r.view === 'list' && r.t > t0).t - t0, t));
    }
    await page.evaluate(() => {
      document.getElementById('search').addEventListener('keydown', () => (window.__lastKey = performance.now()), true);
    });
    for (const q of ['timeout', 'cache miss', 'replica deadlock', 'tls handshake', 'kafka']) {
      await page.fill('#search', '');
      await page.waitForTimeout(400);
      await page.locator('#search').pressSequentially(q, {delay: 40});
      await page.waitForFunction((qq) => window.__lookout.renders.some((r) => r.q === qq), q, {timeout: 10000});
      const m = await page.evaluate((qq) => {
        const r = window.__lookout.renders.find((x) => x.q === qq);
        const req = performance.getEntriesByType('resource')
          .filter((e) => e.name.includes('/api/v1/errors?') && e.responseEnd <= r.t).at(-1);
        return {total: r.t - window.__lastKey, api: req ? req.responseEnd - req.startTime : NaN,
          render: req ? r.t - req.responseEnd : NaN};
      }, q);
      search.push(m.total);
      searchApi.push(m.api);
      searchRender.push(m.render);
    }
    const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)].toFixed(0);
    const fmt = (a) => a.map((x) => x.toFixed(0)).join(', ');
    console.log(`# perf errors=${total} first page, cold page load (navigation start -> rows): median ${med(cold)} ms [${fmt(cold)}]`);
    console.log(`# perf errors=${total} first page, in-app navigation (hash change -> rows): median ${med(nav)} ms [${fmt(nav)}]`);
    console.log(`# perf errors=${total} search, last keystroke -> results rendered (debounce 80 ms incl.): median ${med(search)} ms [${fmt(search)}]`);
    console.log(`# perf   of which the API request (lookout, the bulk storage.type above): median ${med(searchApi)} ms [${fmt(searchApi)}]; JSON -> DOM: median ${med(searchRender)} ms [${fmt(searchRender)}]`);
  });
}

await ctx.close();
fs.rmSync(profile, {recursive: true, force: true});
process.exit(failures ? 1 : 0);
