// The real @segment/analytics-next in Chromium, on a page served from another origin than
// Prossimo. Started by tests/sdk/browser_sdk.sh, which bundles the SDK into
// $PAGE_DIR/analytics.js and runs the server.
//
// Environment: PROSSIMO_URL, WRITE_KEY, ADMIN_TOKEN, SHOP_ONLY_KEY (a source that accepts
// only https://elsewhere.example), PAGE_DIR, PLAYWRIGHT_DIR, CHROMIUM.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const SERVER = env('PROSSIMO_URL');
const WRITE_KEY = env('WRITE_KEY');
const ADMIN_TOKEN = env('ADMIN_TOKEN');
const SHOP_ONLY_KEY = env('SHOP_ONLY_KEY');
const PAGE_DIR = env('PAGE_DIR');
const require = createRequire(path.join(env('PLAYWRIGHT_DIR'), 'package.json'));
const { chromium } = require('playwright-core');

// The shop's page: its own origin (another port), the bundled SDK and nothing else.
const PAGE = `<!doctype html><html lang="it"><head><meta charset="utf-8"><title>Negozio</title>
<script src="/analytics.js"></script></head><body><h1>Scarpe</h1></body></html>`;
const shop = http.createServer((req, res) => {
  if (req.url === '/analytics.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' });
    res.end(readFileSync(path.join(PAGE_DIR, 'analytics.js')));
  } else {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  }
});
await new Promise((resolve) => shop.listen(0, '127.0.0.1', resolve));
const SHOP = `http://localhost:${shop.address().port}`;
assert.notEqual(new URL(SHOP).origin, new URL(SERVER).origin);

async function api(pathname) {
  const response = await fetch(SERVER + pathname, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return { status: response.status, body: await response.json() };
}

// Events of a profile, polled until `count` have arrived (at most 15 s).
async function eventsOf(key, count) {
  for (let i = 0; i < 150; i += 1) {
    const { status, body } = await api(`/v1/profiles/${encodeURIComponent(key)}/events?limit=50`);
    if (status === 200 && body.events.length >= count) return body.events;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${key}: fewer than ${count} events arrived`);
}

const browser = await chromium.launch({ executablePath: env('CHROMIUM'), args: ['--no-sandbox'] });
let failures = 0;
const steps = [
  ['identify, track and page arrive on one profile through the short paths', async (page, seen) => {
    const outcome = await page.evaluate(async ({ writeKey, cdnURL }) => {
      const [analytics] = await window.AnalyticsBrowser.load(
        { writeKey, cdnURL },
        { disableClientPersistence: true },
      );
      await analytics.identify('browser-anna', { email: 'Anna.Browser@Example.it', name: 'Anna Browser' });
      await analytics.track('Product Viewed', { sku: 'SC-41', price: 59.9 });
      await analytics.page('Shop', 'Scarpe');
      return analytics.user().id();
    }, { writeKey: WRITE_KEY, cdnURL: SERVER });
    assert.equal(outcome, 'browser-anna');
    const events = await eventsOf('email:anna.browser@example.it', 3);
    const names = events.map((e) => e.type === 'track' ? e.event : e.type).sort();
    assert.deepEqual(names, ['Product Viewed', 'identify', 'page']);
    for (const e of events) {
      assert.equal(e.context.library.name, 'analytics.js');
      assert.equal(e.channel, 'web');
      assert.match(e.messageId, /^ajs-next-/);
    }
    const pageView = events.find((e) => e.type === 'page');
    assert.equal(pageView.name, 'Scarpe');
    assert.equal(pageView.context.page.url, `${SHOP}/`);
    for (const short of ['/v1/i', '/v1/t', '/v1/p']) {
      assert.ok(seen.includes(short), `no request to ${short}: ${seen}`);
    }
    const { body: profile } = await api('/v1/profiles/user_id:browser-anna');
    assert.equal(profile.traits.name, 'Anna Browser');
  }],
  ['batching sends to /v1/b', async (page, seen) => {
    await page.evaluate(async ({ writeKey, cdnURL }) => {
      const [analytics] = await window.AnalyticsBrowser.load(
        { writeKey, cdnURL },
        {
          disableClientPersistence: true,
          integrations: { 'Segment.io': { deliveryStrategy: { strategy: 'batching', config: { size: 2, timeout: 200 } } } },
        },
      );
      await analytics.identify('browser-bruno', { email: 'bruno.browser@example.it' });
      await analytics.track('Cart Viewed', { items: 2 });
    }, { writeKey: WRITE_KEY, cdnURL: SERVER });
    const events = await eventsOf('user_id:browser-bruno', 2);
    assert.equal(events.length, 2);
    assert.ok(seen.includes('/v1/b'), `no request to /v1/b: ${seen}`);
  }],
  ['a key limited to other pages cannot be used from this one', async (page) => {
    const error = await page.evaluate(async ({ writeKey, cdnURL }) => {
      try {
        await window.AnalyticsBrowser.load({ writeKey, cdnURL }, { disableClientPersistence: true });
        return null;
      } catch (e) {
        return String(e && e.message || e);
      }
    }, { writeKey: SHOP_ONLY_KEY, cdnURL: SERVER });
    assert.ok(error, 'the SDK loaded settings it must not get');
    // Sent by hand as the SDK would, from this page: refused, nothing stored.
    const status = await page.evaluate(async ({ writeKey, server }) => {
      const r = await fetch(`${server}/v1/t`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', authorization: `Basic ${btoa(writeKey + ':')}` },
        body: JSON.stringify({ userId: 'browser-mallory', event: 'Stolen Key Used' }),
      }).catch(() => null);
      return r ? r.status : 'blocked';
    }, { writeKey: SHOP_ONLY_KEY, server: SERVER });
    assert.ok(status === 'blocked' || status === 403, `answered ${status}`);
    const { status: found } = await api('/v1/profiles/user_id:browser-mallory');
    assert.equal(found, 404);
  }],
];
for (const [title, run] of steps) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.origin === new URL(SERVER).origin) seen.push(url.pathname);
  });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(`${SHOP}/`);
    await run(page, seen);
    assert.deepEqual(errors, []);
    console.log(`ok - ${title}`);
  } catch (e) {
    failures += 1;
    console.log(`not ok - ${title}\n${e.stack || e}`);
  } finally {
    await context.close();
  }
}
await browser.close();
shop.close();
console.log(`browser sdk: ${steps.length - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
