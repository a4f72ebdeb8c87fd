// The web UI behind --web.config.file (HTTPS + basic auth), in Debian's chromium driven by playwright-core:
// without credentials the browser gets 401; with them (httpCredentials, what a user types into the
// browser's dialog) the UI loads, lists and opens an error, resolves it (a same-origin POST) and shows the
// scrubbed HTTP context. Prints TAP lines. Started by tests/integration/ui_auth_browser.sh.
// Env: LOOKOUT_UI_URL (https://...), LOOKOUT_UI_USER, LOOKOUT_UI_PASSWORD, CHROMIUM.
import {chromium} from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BASE = process.env.LOOKOUT_UI_URL;
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
function eq(a, b, msg) {
  if (a !== b) throw new Error(`${msg}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}
function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
async function context(creds) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lookout-chromium-auth-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args,
    viewport: {width: 1280, height: 800}, ignoreHTTPSErrors: true, ...(creds ? {httpCredentials: creds} : {}),
  });
}

const anon = await context(null);
await test('without credentials the browser gets 401', async () => {
  const page = anon.pages()[0] || (await anon.newPage());
  // Headless chromium, asked for credentials it does not have, fails the navigation.
  let err = '';
  await page.goto(`${BASE}/`).catch((e) => { err = String(e); });
  assert(err.includes('ERR_INVALID_AUTH_CREDENTIALS'), `navigation: ${err}`);
  const r = await page.request.get(`${BASE}/api/v1/errors`);
  eq(r.status(), 401, 'status');
  eq(r.headers()['www-authenticate'], 'Basic', 'challenge');
});
await anon.close();

const ctx = await context({username: process.env.LOOKOUT_UI_USER, password: process.env.LOOKOUT_UI_PASSWORD});
const page = ctx.pages()[0] || (await ctx.newPage());
const failed = [];
page.on('response', (r) => { if (r.status() === 401 || r.status() === 403) failed.push(`${r.status()} ${r.url()}`); });
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));

await test('with credentials the UI loads over HTTPS and lists the job', async () => {
  const r = await page.goto(`${BASE}/`);
  eq(r.status(), 200, 'status');
  await page.waitForSelector('tr.job-row', {timeout: 10000});
  assert((await page.locator('tr.job-row').innerText()).includes('webshop'), 'job row');
});

await test('the error page opens and shows the scrubbed HTTP context', async () => {
  await page.goto(`${BASE}/?refresh=1#/webshop/errors/` + encodeURIComponent('LoginError@browser'));
  await page.waitForSelector('#resolve', {timeout: 10000});
  const text = await page.locator('body').innerText();
  assert(text.includes('[Filtered]'), 'masked value shown');
  assert(!text.includes('zqbrowser'), 'no secret on the page');
});

await test('resolve (a same-origin POST behind basic auth) works', async () => {
  await page.click('#resolve');
  await page.waitForSelector('#reopen', {timeout: 10000});
  eq(await page.locator('#status-value').innerText(), 'resolved', 'status');
});

await test('no request of the UI was refused (401/403) and no page error', async () => {
  eq(failed.join(', '), '', 'refused requests');
  eq(pageErrors.join(', '), '', 'page errors');
});
await ctx.close();
process.exit(failures ? 1 : 0);
