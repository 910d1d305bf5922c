// The web console in a real browser (Debian's Chromium through playwright-core). Started by
// tests/console/run.sh, which serves the demo retailer; it can also run against any server:
//   CONSOLE_URL=http://127.0.0.1:8080 CONSOLE_EMAIL=admin@localhost CONSOLE_PASSWORD=... \
//   ADMIN_TOKEN=pat_... WRITE_KEY=wk_... node tests/console/e2e.mjs
//
// Environment:
//   CONSOLE_URL       the server (required)
//   CONSOLE_EMAIL     an admin's e-mail (default admin@localhost)
//   CONSOLE_PASSWORD  its password (required)
//   ADMIN_TOKEN       admin API token, used to pick a customer through /v1/profiles; or give
//   CUSTOMER_ID, CUSTOMER_NAME  the customer to look for
//   WRITE_KEY         a source's write key, for the live events step (skipped without it)
//   SCREENSHOT_DIR    where screenshots go (default target/console-screenshots)
//   PLAYWRIGHT_DIR    the folder holding node_modules/playwright-core (default target/console-e2e)
//   CHROMIUM          the browser (default /usr/bin/chromium)
//   HEADED=1          show the browser (needs a display)
//
// Each step is an entry in STEPS: a title and an async function of the shared context. Add
// a step by adding an entry; selectors, words, the audience it writes and the analytics
// charts it expects live in SEL, WORDS, AUDIENCE, CHARTS, LIVE, NEW_USER and NARROW below. The analytics step needs
// `prossimo analyze` (and a `--calibration-end` CLV run for the holdout chart) done first,
// as run.sh does.

import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// ---------------------------------------------------------------------------------------
// Selectors and routes: the contract with the console (crates/console).
// ---------------------------------------------------------------------------------------
const ROUTES = {
  home: '/',
  login: '/login',
  logout: '/logout',
  customers: '/customers',
  customer: (id) => `/customers/${encodeURIComponent(id)}`,
  audiences: '/audiences',
  audienceNew: '/audiences/new',
  audienceCheck: '/audiences/check',
  audience: (slug) => `/audiences/${encodeURIComponent(slug)}`,
  analytics: '/analytics',
  live: '/live',
  settings: '/settings',
  // The server's APIs, called from Node rather than the page.
  track: '/v1/track',
  batch: '/v1/batch',
  profilesApi: '/v1/profiles?q=a',
};

const SEL = {
  loginForm: 'form:has(input[name=password])',
  loginEmail: 'input[name=email]',
  loginPassword: 'input[name=password]',
  csrfField: 'input[type=hidden][name=csrf]',
  alert: '[role=alert]',
  submit: 'button[type=submit], input[type=submit], button:not([type])',

  logoutForm: 'form[action="/logout"]',
  logoutButton: 'form[action="/logout"] button',

  searchForm: 'form[role=search]',
  searchInput: 'form[role=search] input[name=q]',
  customersTable: 'table#customers',
  customerRows: 'table#customers tr:has(td)',
  customerLinks: 'table#customers a[href^="/customers/"]',

  customerName: 'h1',
  sections: {
    traits: 'section#traits',
    identifiers: 'section#identifiers',
    channels: 'section#channels',
    timeline: 'section#timeline',
  },
  timelineRows: 'section#timeline table tbody tr',
  timelineFilter: 'form#timeline-filter',
  channelSelect: 'form#timeline-filter select[name=channel]',
  customerSegments: 'section#segments',
  customerSegmentItems: 'section#segments li',

  // Audiences (crates/console/templates/audiences.html, audience_editor.html, audience.html).
  newAudienceLink: 'a[href="/audiences/new"]',
  audiencesTable: 'table#audiences',
  audienceRow: (slug) => `table#audiences tr[data-slug="${slug}"]`,
  audienceRowSize: '.size',
  editor: 'form#audience-editor',
  slug: '#slug',
  name: '#name',
  description: '#description',
  definition: '#definition',
  definitionStatus: '#definition-status',
  problem: '#definition-status .problem',
  problemOnLine: (line) => `#definition-status .problem[data-line="${line}"]`,
  definitionOk: '#definition-status .ok',
  checkButton: 'button[name=action][value=check]',
  previewButton: 'button[name=action][value=preview]',
  saveButton: 'button[name=action][value=save]',
  previewCount: '#preview .count',
  audienceTitle: 'h1',
  audienceSize: '#size .count',
  audienceMemberLinks: '#members a[href^="/customers/"]',

  // Analytics (/analytics): one figure per chart.
  chart: (name) => `figure.chart[data-chart="${name}"]`,
  chartCaption: 'figcaption',
  chartSvgValues: 'svg[data-value], svg [data-value]',
  chartTableValues: 'table td[data-value]',
  chartTitle: (name) => `figure.chart[data-chart="${name}"] h2`,

  // Live events (crates/console/templates/live.html; rows added by console.js).
  liveTable: 'table#live',
  liveRows: 'table#live tbody tr',
  liveAccepted: 'tr.accepted',
  liveRefused: 'tr.refused',
  liveProblem: 'li',
  liveEmpty: '#live-empty',
  livePause: '#live-pause',

  // Settings (crates/console/templates/settings.html), for admins only.
  settingsLink: 'nav a[href="/settings"]',
  settingsDone: '.ok[role=status]',
  settingsError: '.error[role=alert]',
  userEmail: '#user-email',
  userName: '#user-name',
  userRole: '#user-role',
  userPassword: '#user-password',
  userForm: 'form[action="/settings/create-user"]',
  userRow: (email) => `tr[data-email="${email}"]`,
  tokenName: '#token-name',
  tokenForm: 'form[action="/settings/create-token"]',
  tokensSection: 'section#tokens',
  newToken: '#new-token',
};

// The audience the editor steps create: a type error on line 2 (p_alive is a number), then
// the fix. The demo retailer has orders in the last year, so the fix has members.
const AUDIENCE = {
  slug: `e2e-store-buyers-${Date.now().toString(36)}`,
  name: 'E2E store buyers',
  description: 'Created by tests/console/e2e.mjs',
  broken: 'count(event "Order Completed" within 365d) >= 1\nand p_alive < "low"',
  brokenLine: 2,
  fixed: 'count(event "Order Completed" within 365d) >= 1',
};
// How long the server's decider may take to fill a new audience.
const AUDIENCE_FILL_MS = 30_000;

// The charts of /analytics, by data-chart.
const CHARTS = [
  'growth',
  'new-returning',
  'cohorts',
  'rfm',
  'clv-distribution',
  'p-alive-recency',
  'churn-loyalty',
  'channels',
  'holdout',
];

// Live events: what is sent through the tracking API and how soon the page must show it
// (console.js polls /live/entries every second).
const LIVE = {
  userId: 'e2e-live',
  event: 'E2E Live Check',
  messageId: (tag) => `e2e-live-${tag}-${Date.now().toString(36)}`,
  // A batch nobody can be identified in: 400, "userId or anonymousId is required".
  invalidBatch: { batch: [{ type: 'track', event: 'No Identity' }] },
  problem: /userId|anonymousId/,
  waitMs: 5_000,
  // While paused, a new message must not show for this long.
  pausedMs: 2_500,
};

// The console user the settings step adds, then signs in as.
const NEW_USER = {
  email: `e2e-viewer-${Date.now().toString(36)}@example.com`,
  name: 'E2E Viewer',
  role: 'viewer',
  password: 'e2e-viewer-Passw0rd',
  tokenName: `e2e token ${Date.now().toString(36)}`,
};

// Narrow screens: a phone-sized viewport, and the pages that must not scroll sideways.
// `customer` is the page step d found.
const NARROW = {
  viewport: { width: 390, height: 844 },
  pages: [
    ['customers', '/customers?q=a'],
    ['customer', 'customer'],
    ['audiences', '/audiences'],
    ['analytics', '/analytics'],
    ['live', '/live'],
  ],
  // Also measured and screenshotted, but only reported: they do not fail the step.
  alsoLook: [
    ['settings', '/settings'],
    ['audience-editor', '/audiences/new'],
    ['audience', 'audience'],
  ],
};

// Words of which at least one must show on the Italian customers page (and none of them
// on the English one is required: the pages are compared as a whole too).
const WORDS = {
  italian: ['Clienti', 'Cliente', 'Cerca', 'Esci', 'Nome', 'Ultima'],
  // The growth chart's title on /analytics?lang=it.
  italianChart: 'Base clienti',
};

// ---------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------
const env = (name, fallback) => {
  const v = process.env[name];
  if (v !== undefined && v !== '') return v;
  if (fallback === undefined) {
    console.error(`console e2e: ${name} is required`);
    process.exit(2);
  }
  return fallback;
};

const BASE = env('CONSOLE_URL').replace(/\/+$/, '');
const EMAIL = env('CONSOLE_EMAIL', 'admin@localhost');
const PASSWORD = env('CONSOLE_PASSWORD');
const ADMIN_TOKEN = env('ADMIN_TOKEN', '');
const WRITE_KEY = env('WRITE_KEY', '');
const SHOTS = path.resolve(env('SCREENSHOT_DIR', path.join(ROOT, 'target/console-screenshots')));
const PLAYWRIGHT_DIR = path.resolve(env('PLAYWRIGHT_DIR', path.join(ROOT, 'target/console-e2e')));
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');

// ESM ignores NODE_PATH: load playwright-core from its own folder.
const { chromium } = createRequire(path.join(PLAYWRIGHT_DIR, 'node_modules', '/'))('playwright-core');

const url = (p) => BASE + p;
const pathOf = (page) => new URL(page.url()).pathname;
const squash = (s) => (s ?? '').replace(/\s+/g, ' ').trim();

let currentStep = null;

/** One checked fact: prints it, fails the step when it does not hold. */
function check(ok, what, detail = '') {
  if (!ok) {
    throw new assert.AssertionError({ message: `${what}${detail ? `: ${detail}` : ''}` });
  }
  console.log(`    ok  ${what}`);
}

function note(text) {
  console.log(`    --  ${text}`);
}

class Skip extends Error {}

/** Navigate and wait for the page to load; returns the main response. */
async function visit(page, p) {
  return page.goto(url(p), { waitUntil: 'load' });
}

/** Click something that submits a form and wait for the page it leads to. */
async function submitAndWait(page, locator) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    locator.click(),
  ]);
  return response;
}

async function shot(page, name, fullPage = true) {
  const file = path.join(SHOTS, name);
  await page.screenshot({ path: file, fullPage });
  note(`screenshot ${path.relative(ROOT, file)}`);
}

/** Inputs a person cannot name: no <label> (for/id or wrapping), aria-label or aria-labelledby. */
async function unlabelledInputs(page) {
  return page.evaluate(() => {
    const exempt = new Set(['hidden', 'submit', 'button', 'reset', 'image']);
    const out = [];
    for (const input of document.querySelectorAll('input, select, textarea')) {
      if (exempt.has((input.getAttribute('type') || '').toLowerCase())) continue;
      const byLabel = [...(input.labels || [])].some((l) => l.textContent.trim() !== '');
      const byAria = (input.getAttribute('aria-label') || '').trim() !== '';
      const byRef = (input.getAttribute('aria-labelledby') || '')
        .split(/\s+/)
        .filter(Boolean)
        .some((id) => (document.getElementById(id)?.textContent || '').trim() !== '');
      if (!byLabel && !byAria && !byRef) out.push(input.outerHTML.slice(0, 160));
    }
    return out;
  });
}

/** What every signed-in page carries: <html lang> and a sign-out form with its CSRF field. */
async function checkSignedInChrome(page) {
  const lang = await page.getAttribute('html', 'lang');
  check(lang === 'en' || lang === 'it', `<html lang> is en or it`, `got ${JSON.stringify(lang)}`);
  const form = page.locator(SEL.logoutForm);
  check((await form.count()) === 1, `one ${SEL.logoutForm}`, `found ${await form.count()}`);
  const method = ((await form.getAttribute('method')) || '').toLowerCase();
  check(method === 'post', `the sign-out form is method=post`, `got ${JSON.stringify(method)}`);
  const csrf = await form.locator(SEL.csrfField).getAttribute('value').catch(() => null);
  check(!!csrf, `the sign-out form carries a non-empty hidden csrf field`);
}

/** Calls probe() until it returns something truthy or ms pass; returns the last result. */
async function poll(ms, probe, everyMs = 1_000) {
  const until = Date.now() + ms;
  for (;;) {
    const result = await probe();
    if (result || Date.now() >= until) return result;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A whole number shown in an element (thousands separators allowed), or NaN. */
async function numberIn(locator) {
  if ((await locator.count()) === 0) return NaN;
  const text = squash(await locator.first().innerText());
  return /^[\d.,\s\u202f\u00a0']+$/.test(text) ? Number(text.replace(/[^\d]/g, '')) : NaN;
}

/** Type a definition into the editor and wait for the live check's answer. */
async function typeDefinition(page, text) {
  const answered = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === ROUTES.audienceCheck,
  );
  const started = Date.now();
  await page.locator(SEL.definition).fill(text);
  const res = await answered;
  return { res, started };
}

/** POST JSON to the tracking API with the write key (Basic base64(writeKey:)), from Node. */
async function ingestApi(p, body) {
  const r = await fetch(url(p), {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
  });
  return { status: r.status, text: await r.text() };
}

/** Count a page's 5xx answers and script errors with the main page's. */
function watch(ctx, page) {
  page.on('response', (r) => {
    if (r.status() >= 500) ctx.serverErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('pageerror', (e) => ctx.pageErrors.push(String(e)));
  return page;
}

/** Sign in through the login form; returns the POST's answer. */
async function signIn(page, email, password) {
  await visit(page, ROUTES.login);
  const form = page.locator(SEL.loginForm);
  await form.locator(SEL.loginEmail).fill(email);
  await form.locator(SEL.loginPassword).fill(password);
  const posted = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === ROUTES.login,
  );
  await submitAndWait(page, form.locator(SEL.submit).first());
  return posted;
}

/** Rows of table#live newer than `after` (data-seq), as text. */
async function liveRowsAfter(page, after) {
  return page.locator(SEL.liveRows).evaluateAll(
    (trs, after) =>
      trs
        .filter((tr) => Number(tr.dataset.seq) > after)
        .map((tr) => `${tr.className} seq=${tr.dataset.seq}: ${tr.textContent.replace(/\s+/g, ' ').trim()}`),
    after,
  );
}

/**
 * Does the page scroll sideways? Compares the document's scrollWidth with the viewport and,
 * when it is wider, names the elements that stick out past the right edge: the outermost
 * ones (their parent fits) are what to fix; elements inside a box with its own overflow
 * (auto, scroll, hidden, clip) are left out, since they scroll or clip in there.
 */
async function sidewaysReport(page) {
  return page.evaluate(() => {
    const html = document.documentElement;
    const innerWidth = window.innerWidth;
    const scrollWidth = html.scrollWidth;
    const out = { innerWidth, clientWidth: html.clientWidth, scrollWidth, bodyScrollWidth: document.body.scrollWidth };
    if (scrollWidth <= innerWidth + 1) return { ...out, ok: true, offenders: [], widest: [] };
    const name = (el) => {
      let s = el.tagName.toLowerCase();
      // getAttribute: a form's .id is its <input name=id> when it has one.
      const id = el.getAttribute('id');
      if (id) s += `#${id}`;
      const cls = typeof el.className === 'string' ? el.className : el.getAttribute('class') || '';
      for (const c of cls.split(/\s+/).filter(Boolean).slice(0, 3)) s += `.${c}`;
      for (const a of ['data-chart', 'data-email', 'data-slug', 'data-channel']) {
        if (el.hasAttribute(a)) s += `[${a}="${el.getAttribute(a)}"]`;
      }
      return s;
    };
    const pathTo = (el) => {
      const parts = [];
      // Up to the nearest ancestor with an id (a section, the table), at most 7 levels.
      for (let e = el; e && e !== document.body && parts.length < 7; e = e.parentElement) {
        parts.unshift(name(e));
        if (e !== el && e.getAttribute('id')) break;
      }
      return parts.join(' > ');
    };
    // Clipped by a box with its own overflow on its containing-block chain: an absolutely
    // positioned element escapes static ancestors, so their overflow does not hold it.
    const clipped = (el) => {
      let mode = getComputedStyle(el).position;
      for (let p = el.parentElement; p && p !== document.body && p !== html; p = p.parentElement) {
        const cs = getComputedStyle(p);
        const containsFixed = cs.transform !== 'none' || cs.filter !== 'none' || /paint|strict|content/.test(cs.contain);
        const onChain = mode === 'absolute' ? cs.position !== 'static' || containsFixed
          : mode === 'fixed' ? containsFixed
          : true;
        if (!onChain) continue;
        if (cs.overflowX !== 'visible') return true;
        mode = cs.position === 'absolute' || cs.position === 'fixed' ? cs.position : 'static';
      }
      return false;
    };
    const over = [];
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.right + window.scrollX <= innerWidth + 1 || clipped(el)) continue;
      over.push({ el, right: Math.round(r.right + window.scrollX), width: Math.round(r.width) });
    }
    // Text that runs past its own box (a long word, a code value) widens the page without
    // any element being wider: name the element holding it.
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    const spilling = new Map();
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      if (!t.textContent.trim() || !t.parentElement) continue;
      range.selectNodeContents(t);
      const r = range.getBoundingClientRect();
      if (r.width === 0 || r.right + window.scrollX <= innerWidth + 1) continue;
      const el = t.parentElement;
      if (clipped(el) || over.some((o) => o.el === el)) continue;
      const box = el.getBoundingClientRect();
      if (!spilling.has(el)) spilling.set(el, { right: Math.round(r.right + window.scrollX), boxRight: Math.round(box.right), text: t.textContent.trim().slice(0, 60) });
    }
    const textSpills = [...spilling.entries()]
      .sort((a, b) => b[1].right - a[1].right)
      .slice(0, 6)
      .map(([el, o]) => {
        const cs = getComputedStyle(el);
        return `${pathTo(el)}: text reaches right=${o.right} but its box ends at ${o.boxRight} ` +
          `{white-space:${cs.whiteSpace}; overflow-wrap:${cs.overflowWrap}; word-break:${cs.wordBreak}} "${o.text}"`;
      });
    // Nothing found outside boxes of their own: list what sticks out inside them, naming the
    // box (if the page still scrolls, that box does not contain its content).
    const insideBoxes = [];
    if (over.length === 0 && spilling.size === 0) {
      for (const el of document.body.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.right + window.scrollX <= innerWidth + 1) continue;
        let box = el.parentElement;
        while (box && getComputedStyle(box).overflowX === 'visible') box = box.parentElement;
        const br = box?.getBoundingClientRect();
        const cs = getComputedStyle(el);
        insideBoxes.push({
          right: Math.round(r.right + window.scrollX),
          what: `${pathTo(el)} right=${Math.round(r.right + window.scrollX)} width=${Math.round(r.width)} position:${cs.position}` +
            (box ? `; inside ${name(box)} {overflow-x:${getComputedStyle(box).overflowX}} right=${Math.round(br.right)} scrollWidth=${box.scrollWidth} clientWidth=${box.clientWidth}` : ''),
        });
      }
      insideBoxes.sort((a, b) => b.right - a.right);
    }
    const set = new Set(over.map((o) => o.el));
    const describe = (o) => {
      const cs = getComputedStyle(o.el);
      const text = (o.el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60);
      return {
        path: pathTo(o.el),
        right: o.right,
        width: o.width,
        css: `display:${cs.display}; position:${cs.position}; white-space:${cs.whiteSpace}; min-width:${cs.minWidth}; width:${cs.width}`,
        text,
      };
    };
    // A table too wide: its columns, and the cells that cannot shrink (nowrap, long words).
    const tableDetail = (table) => {
      const head = table.tHead?.rows[0] ?? table.rows[0];
      const columns = head
        ? [...head.cells].map((c) => `${c.textContent.replace(/\s+/g, ' ').trim() || '(blank)'} ${Math.round(c.getBoundingClientRect().width)}px`)
        : [];
      const cells = [...table.querySelectorAll('td, th')]
        .map((c) => {
          const cs = getComputedStyle(c);
          // The cell's narrowest possible width: its content laid out at min-content.
          const probe = c.cloneNode(true);
          probe.style.cssText = 'position:absolute;visibility:hidden;width:min-content;left:-9999px;top:0';
          document.body.appendChild(probe);
          const min = Math.round(probe.getBoundingClientRect().width);
          probe.remove();
          const code = c.querySelector('code, .nowrap, .badge');
          return {
            min,
            what: `${name(c)} col ${c.cellIndex + 1} min-content ${min}px white-space:${cs.whiteSpace}` +
              `${code ? ` (holds ${name(code)}, white-space:${getComputedStyle(code).whiteSpace})` : ''}` +
              ` "${c.textContent.replace(/\s+/g, ' ').trim().slice(0, 40)}"`,
          };
        })
        .sort((a, b) => b.min - a.min);
      const seen = new Set();
      const widestCells = [];
      for (const c of cells) {
        const key = c.what.replace(/".*$/, '');
        if (seen.has(key)) continue;
        seen.add(key);
        widestCells.push(c.what);
        if (widestCells.length === 4) break;
      }
      const wrapper = table.parentElement;
      return {
        columns,
        widestCells,
        wrapper: `${name(wrapper)} overflow-x:${getComputedStyle(wrapper).overflowX}`,
      };
    };
    const byRight = (a, b) => b.right - a.right || b.width - a.width;
    const offenders = over.filter((o) => !set.has(o.el.parentElement)).sort(byRight).slice(0, 8);
    return {
      ...out,
      ok: false,
      textSpills,
      insideBoxes: insideBoxes.slice(0, 6).map((o) => o.what),
      offenders: offenders.map((o) => ({
        ...describe(o),
        table: o.el.tagName === 'TABLE' ? tableDetail(o.el) : o.el.querySelector('table') ? tableDetail(o.el.querySelector('table')) : null,
      })),
      // The deepest elements past the edge (no child of theirs is), widest first.
      widest: over
        .filter((o) => ![...o.el.children].some((c) => set.has(c)))
        .sort(byRight)
        .slice(0, 5)
        .map(describe),
    };
  });
}

/** The customer to look for: from CUSTOMER_ID/CUSTOMER_NAME, else the admin read API. */
async function pickCustomer() {
  if (process.env.CUSTOMER_ID && process.env.CUSTOMER_NAME) {
    return { id: String(process.env.CUSTOMER_ID), name: process.env.CUSTOMER_NAME, channels: [] };
  }
  assert.ok(ADMIN_TOKEN, 'set ADMIN_TOKEN (or CUSTOMER_ID and CUSTOMER_NAME)');
  const api = async (p) => {
    const r = await fetch(url(p), { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const text = await r.text();
    assert.equal(r.status, 200, `GET ${p}: HTTP ${r.status} ${text.slice(0, 300)}`);
    return JSON.parse(text);
  };
  // A named customer seen on several channels, so the timeline filter has something to do.
  let fallback = null;
  for (const q of ['a', 'm', 'g', 'l', 's']) {
    const { profiles } = await api(`/v1/profiles?q=${q}&limit=20`);
    for (const p of profiles.filter((p) => p.name)) {
      const full = await api(`/v1/profiles/${p.id}`);
      const channels = Object.keys(full.counts_by_channel || {});
      const c = {
        id: String(p.id),
        name: p.name,
        email: full.traits?.email ?? p.email ?? null,
        userId: p.user_id ?? null,
        channels,
        events: full.event_count,
      };
      if (channels.length >= 2) return c;
      fallback ??= c;
    }
  }
  assert.ok(fallback, 'no customer with a name found through /v1/profiles?q=…');
  return fallback;
}

// ---------------------------------------------------------------------------------------
// Steps. Each gets the shared context: { page, context, browser, customer, ... }.
// ---------------------------------------------------------------------------------------
const STEPS = [
  {
    title: 'a. signed out, / redirects to /login',
    async run(ctx) {
      const { page } = ctx;
      const res = await visit(page, ROUTES.home);
      check(pathOf(page) === ROUTES.login, `GET / ends on ${ROUTES.login}`, `ended on ${page.url()}`);
      check(res && res.status() === 200, `the login page answers 200`, `got ${res?.status()}`);
      check((await page.locator(SEL.loginForm).count()) === 1, `the login page has a sign-in form`);
      const csrf = await page.locator(`${SEL.loginForm} ${SEL.csrfField}`).getAttribute('value');
      check(!!csrf, `the sign-in form carries a non-empty hidden csrf field`);
      const lang = await page.getAttribute('html', 'lang');
      check(lang === 'en' || lang === 'it', `<html lang> is en or it`, `got ${JSON.stringify(lang)}`);
      await shot(page, 'login.png');
    },
  },
  {
    title: 'j1. accessibility: every input on the login page has a label',
    async run({ page }) {
      const bad = await unlabelledInputs(page);
      check(bad.length === 0, 'every visible input has a <label> or aria-label', bad.join('\n      '));
    },
  },
  {
    title: 'b. a wrong password shows an alert and stays on /login',
    async run({ page }) {
      const form = page.locator(SEL.loginForm);
      await form.locator(SEL.loginEmail).fill(EMAIL);
      await form.locator(SEL.loginPassword).fill(`${PASSWORD}-wrong`);
      const posted = page.waitForResponse(
        (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === ROUTES.login,
      );
      await submitAndWait(page, form.locator(SEL.submit).first());
      const res = await posted;
      note(`POST /login answered ${res.status()}`);
      check(pathOf(page) === ROUTES.login, `still on ${ROUTES.login}`, `on ${page.url()}`);
      const alert = page.locator(SEL.alert);
      check((await alert.count()) >= 1, `an ${SEL.alert} element is shown`);
      const text = squash(await alert.first().innerText());
      check(text !== '', `the alert says something`, 'it is empty');
      check(await alert.first().isVisible(), `the alert is visible`);
      note(`alert: "${text}"`);
      check(
        !(await page.content()).includes(`${PASSWORD}-wrong`),
        'the page does not echo the password back',
      );
      check(
        (await page.locator(SEL.logoutForm).count()) === 0,
        'no sign-out form: not signed in',
      );
    },
  },
  {
    title: 'c. the right password lands on /customers',
    async run(ctx) {
      const { page, context } = ctx;
      const form = page.locator(SEL.loginForm);
      await form.locator(SEL.loginEmail).fill(EMAIL);
      await form.locator(SEL.loginPassword).fill(PASSWORD);
      const posted = page.waitForResponse(
        (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === ROUTES.login,
      );
      await submitAndWait(page, form.locator(SEL.submit).first());
      const res = await posted;
      check(res.status() === 303, `POST /login answers 303`, `got ${res.status()}`);
      check(pathOf(page) === ROUTES.customers, `lands on ${ROUTES.customers}`, `on ${page.url()}`);
      await checkSignedInChrome(page);
      const cookies = await context.cookies(BASE);
      ctx.sessionCookies = cookies;
      note(
        `cookies: ${cookies
          .map((c) => `${c.name} (httpOnly=${c.httpOnly}, sameSite=${c.sameSite})`)
          .join(', ') || 'none'}`,
      );
      check(cookies.some((c) => c.httpOnly), 'an HttpOnly session cookie is set');
    },
  },
  {
    title: 'j2. accessibility: every input on the customers page has a label',
    async run({ page }) {
      const bad = await unlabelledInputs(page);
      check(bad.length === 0, 'every visible input has a <label> or aria-label', bad.join('\n      '));
    },
  },
  {
    title: 'd. search finds the customer',
    async run(ctx) {
      const { page, customer } = ctx;
      note(`looking for #${customer.id} "${customer.name}" (channels: ${customer.channels.join(', ') || '?'})`);
      const input = page.locator(SEL.searchInput);
      check((await input.count()) === 1, `one ${SEL.searchInput}`, `found ${await input.count()}`);
      await input.fill(customer.name);
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), input.press('Enter')]);
      check(pathOf(page) === ROUTES.customers, `results are on ${ROUTES.customers}`, `on ${page.url()}`);
      check(
        new URL(page.url()).searchParams.get('q') === customer.name,
        `the URL carries q=${customer.name}`,
        page.url(),
      );
      check(
        (await input.inputValue()) === customer.name,
        'the search box keeps the term',
        `it holds ${JSON.stringify(await input.inputValue())}`,
      );
      check((await page.locator(SEL.customersTable).count()) === 1, `a ${SEL.customersTable}`);
      const rows = await page.locator(SEL.customerRows).count();
      check(rows >= 1, `${SEL.customerRows}: at least one row`, `found ${rows}`);
      note(`${rows} rows`);
      await checkSignedInChrome(page);
      await shot(page, 'customers.png');

      const links = page.locator(SEL.customerLinks);
      const hrefs = await links.evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      check(hrefs.length >= 1, `a link ${SEL.customerLinks}`, `found none`);
      const wanted = ROUTES.customer(customer.id);
      let index = hrefs.findIndex((h) => new URL(h, BASE).pathname === wanted);
      if (index < 0) {
        // Common names are shared; any result carries the searched name.
        note(`#${customer.id} is not among the ${hrefs.length} links; following the first one`);
        index = 0;
      }
      const link = links.nth(index);
      const rowText = squash(await link.locator('xpath=ancestor::tr[1]').innerText());
      check(
        rowText.toLowerCase().includes(customer.name.toLowerCase()),
        `the result row shows the name`,
        `row: "${rowText}"`,
      );
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), link.click()]);
      const m = pathOf(page).match(/^\/customers\/([^/]+)$/);
      check(!!m, `the link leads to /customers/{id}`, `on ${page.url()}`);
      ctx.customerPath = pathOf(page);
      if (m[1] !== customer.id) ctx.customer = { ...customer, id: m[1], channels: [] };
    },
  },
  {
    title: 'e. the customer page shows the 360',
    async run(ctx) {
      const { page, customer } = ctx;
      check(pathOf(page) === ROUTES.customer(customer.id), `on ${ROUTES.customer(customer.id)}`, page.url());
      const h1 = squash(await page.locator(SEL.customerName).first().innerText());
      check(
        h1.toLowerCase().includes(customer.name.toLowerCase()),
        `h1 contains "${customer.name}"`,
        `h1 is "${h1}"`,
      );
      for (const [name, sel] of Object.entries(SEL.sections)) {
        const section = page.locator(sel);
        check((await section.count()) === 1, `${sel} exists`, `found ${await section.count()}`);
        // Non-empty: something besides its headings.
        const body = await section.evaluate((s) => {
          const c = s.cloneNode(true);
          c.querySelectorAll('h1, h2, h3, h4, h5, h6').forEach((h) => h.remove());
          return c.textContent.replace(/\s+/g, ' ').trim();
        });
        check(body !== '', `${sel} has content besides its heading`);
        ctx[`${name}Text`] = body;
      }
      if (customer.email) {
        check(
          ctx.traitsText.toLowerCase().includes(customer.email.toLowerCase()) ||
            ctx.identifiersText.toLowerCase().includes(customer.email.toLowerCase()),
          `traits or identifiers show the e-mail ${customer.email}`,
        );
      }
      if (customer.userId) {
        check(ctx.identifiersText.includes(customer.userId), `identifiers show the user id ${customer.userId}`);
      }
      const rows = page.locator(SEL.timelineRows);
      const n = await rows.count();
      check(n >= 1, `${SEL.timelineRows}: at least one row`, `found ${n}`);
      const channels = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-channel')));
      check(
        channels.every((c) => c && c.trim() !== ''),
        'every timeline row has a data-channel',
        `values: ${JSON.stringify([...new Set(channels)])}`,
      );
      note(`${n} timeline rows; channels shown: ${[...new Set(channels)].join(', ')}`);
      ctx.timelineChannels = channels;
      await checkSignedInChrome(page);
      await shot(page, 'customer.png');
    },
  },
  {
    title: 'f. the timeline filter keeps one channel',
    async run(ctx) {
      const { page, customer } = ctx;
      const select = page.locator(SEL.channelSelect);
      check((await select.count()) === 1, `one ${SEL.channelSelect}`, `found ${await select.count()}`);
      const method = ((await page.locator(SEL.timelineFilter).getAttribute('method')) || 'get').toLowerCase();
      check(method === 'get', `${SEL.timelineFilter} is a GET form`, `method=${method}`);
      const options = (await select.locator('option').evaluateAll((os) => os.map((o) => o.value))).filter(
        (v) => v !== '',
      );
      note(`options: ${options.join(', ')}`);
      const known = new Set([...customer.channels, ...ctx.timelineChannels]);
      if (known.size < 2) {
        throw new Skip(`the customer has only one channel (${[...known].join(', ')}): nothing to filter`);
      }
      // Prefer a channel the customer has that is not the newest row's, so the list changes.
      const candidates = options.filter((o) => known.has(o));
      check(candidates.length >= 1, `the select offers one of the customer's channels`, `options: ${options}`);
      const channel = candidates.find((o) => o !== ctx.timelineChannels[0]) ?? candidates[0];
      note(`filtering on ${channel}`);
      await select.selectOption(channel);
      await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        page.locator(SEL.timelineFilter).evaluate((f) => f.requestSubmit()),
      ]);
      check(pathOf(page) === ctx.customerPath, `still on ${ctx.customerPath}`, page.url());
      check(
        new URL(page.url()).searchParams.get('channel') === channel,
        `the URL carries channel=${channel}`,
        page.url(),
      );
      const rows = await page.locator(SEL.timelineRows).evaluateAll((trs) =>
        trs.map((tr) => tr.getAttribute('data-channel')),
      );
      check(rows.length >= 1, `at least one ${channel} row`, 'the timeline is empty');
      const other = rows.filter((c) => c !== channel);
      check(other.length === 0, `all ${rows.length} rows have data-channel="${channel}"`, `others: ${JSON.stringify(other)}`);
      const selected = await page.locator(SEL.channelSelect).inputValue();
      check(selected === channel, 'the select keeps the chosen channel', `it shows ${JSON.stringify(selected)}`);
      await shot(page, 'customer-filtered.png');
    },
  },
  {
    title: 'g. ?lang=it shows Italian, ?lang=en switches back',
    async run({ page }) {
      await visit(page, `${ROUTES.customers}?lang=en`);
      const english = squash(await page.locator('body').innerText());
      await visit(page, `${ROUTES.customers}?lang=it`);
      const lang = await page.getAttribute('html', 'lang');
      check(lang === 'it', '?lang=it gives <html lang="it">', `got ${JSON.stringify(lang)}`);
      const italian = squash(await page.locator('body').innerText());
      check(italian !== english, 'the page text differs from the English page');
      const found = WORDS.italian.filter((w) => italian.includes(w));
      check(found.length >= 1, `Italian words show (${found.join(', ')})`, `none of ${WORDS.italian.join(', ')} in "${italian.slice(0, 200)}"`);
      await checkSignedInChrome(page);
      await shot(page, 'customers-it.png');
      await visit(page, ROUTES.customers);
      note(`without ?lang the next page is lang="${await page.getAttribute('html', 'lang')}"`);
      await visit(page, `${ROUTES.customers}?lang=en`);
      const back = await page.getAttribute('html', 'lang');
      check(back === 'en', '?lang=en gives <html lang="en">', `got ${JSON.stringify(back)}`);
    },
  },
  {
    title: 'k1. audiences: the editor checks the definition as you type',
    async run(ctx) {
      const { page } = ctx;
      const res = await visit(page, ROUTES.audiences);
      check(res && res.status() === 200, `${ROUTES.audiences} answers 200`, `got ${res?.status()}`);
      check(pathOf(page) === ROUTES.audiences, `on ${ROUTES.audiences}`, page.url());
      await checkSignedInChrome(page);
      const link = page.locator(SEL.newAudienceLink);
      check((await link.count()) >= 1, `the admin sees ${SEL.newAudienceLink}`, `found ${await link.count()}`);
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), link.first().click()]);
      check(pathOf(page) === ROUTES.audienceNew, `the link leads to ${ROUTES.audienceNew}`, page.url());
      check((await page.locator(SEL.editor).count()) === 1, `one ${SEL.editor}`);
      const bad = await unlabelledInputs(page);
      check(bad.length === 0, 'every input of the editor has a <label> or aria-label', bad.join('\n      '));

      note(`slug ${AUDIENCE.slug}`);
      await page.locator(SEL.slug).fill(AUDIENCE.slug);
      await page.locator(SEL.name).fill(AUDIENCE.name);
      await page.locator(SEL.description).fill(AUDIENCE.description);
      const { res: answer, started } = await typeDefinition(page, AUDIENCE.broken);
      check(answer.status() === 200, `POST ${ROUTES.audienceCheck} answers 200`, `got ${answer.status()}`);
      const json = await answer.json().catch(() => null);
      note(`the check answered ${JSON.stringify(json)}`);
      const problem = page.locator(SEL.problemOnLine(AUDIENCE.brokenLine));
      await problem.waitFor({ state: 'visible', timeout: 5_000 }).catch(() => {});
      const shown = await page.locator(SEL.problem).evaluateAll((ps) =>
        ps.map((p) => `data-line=${p.dataset.line} "${p.textContent.replace(/\s+/g, ' ').trim()}"`),
      );
      check(
        (await problem.count()) === 1,
        `${SEL.problemOnLine(AUDIENCE.brokenLine)} shows`,
        `shown: ${JSON.stringify(shown)}`,
      );
      note(`shown ${Date.now() - started} ms after typing (300 ms debounce): ${shown.join('; ')}`);
      const invalid = await page.locator(SEL.definition).getAttribute('aria-invalid');
      check(invalid === 'true', `${SEL.definition} has aria-invalid="true"`, `got ${JSON.stringify(invalid)}`);
      await shot(page, 'audience-error.png');
    },
  },
  {
    title: 'k2. audiences: without JavaScript, Check answers 422 with the same problem',
    async run({ page }) {
      const res = await submitAndWait(page, page.locator(SEL.checkButton));
      check(res && res.status() === 422, 'the check button answers 422', `got ${res?.status()}`);
      const html = res ? await res.text() : '';
      check(
        html.includes(`data-line="${AUDIENCE.brokenLine}"`) && /class="problem"/.test(html),
        `the server's HTML carries .problem[data-line="${AUDIENCE.brokenLine}"]`,
      );
      check(
        (await page.locator(SEL.problemOnLine(AUDIENCE.brokenLine)).count()) === 1,
        `${SEL.problemOnLine(AUDIENCE.brokenLine)} shows`,
      );
      const invalid = await page.locator(SEL.definition).getAttribute('aria-invalid');
      check(invalid === 'true', `${SEL.definition} has aria-invalid="true"`, `got ${JSON.stringify(invalid)}`);
      const kept = {
        slug: await page.locator(SEL.slug).inputValue(),
        name: await page.locator(SEL.name).inputValue(),
        definition: await page.locator(SEL.definition).inputValue(),
      };
      check(
        kept.slug === AUDIENCE.slug && kept.name === AUDIENCE.name &&
          kept.definition.replace(/\r\n/g, '\n') === AUDIENCE.broken,
        'the form keeps slug, name and definition',
        JSON.stringify(kept),
      );
    },
  },
  {
    title: 'k3. audiences: the fixed definition is valid and previews members',
    async run({ page }) {
      const { res } = await typeDefinition(page, AUDIENCE.fixed);
      check(res.status() === 200, `POST ${ROUTES.audienceCheck} answers 200`, `got ${res.status()}`);
      const ok = page.locator(SEL.definitionOk);
      await ok.waitFor({ state: 'visible', timeout: 5_000 }).catch(() => {});
      check((await ok.count()) === 1, `${SEL.definitionOk} shows`, squash(await page.locator(SEL.definitionStatus).innerText()));
      check((await page.locator(SEL.problem).count()) === 0, 'no .problem is left');
      note(`status: ${squash(await ok.innerText())}`);
      const invalid = await page.locator(SEL.definition).getAttribute('aria-invalid');
      check(invalid === null, `${SEL.definition} lost aria-invalid`, `got ${JSON.stringify(invalid)}`);

      const started = Date.now();
      const preview = await submitAndWait(page, page.locator(SEL.previewButton));
      check(preview && preview.status() === 200, 'Preview answers 200', `got ${preview?.status()}`);
      const count = await numberIn(page.locator(SEL.previewCount));
      check(count > 0, `${SEL.previewCount} is a number > 0`, `shows ${JSON.stringify(await page.locator(SEL.previewCount).allInnerTexts())}`);
      note(`preview: ${count} customers (${Date.now() - started} ms round trip)`);
      await shot(page, 'audience-preview.png');
    },
  },
  {
    title: 'k4. audiences: Save opens the audience, the list shows it and it fills',
    async run(ctx) {
      const { page } = ctx;
      const target = ROUTES.audience(AUDIENCE.slug);
      await submitAndWait(page, page.locator(SEL.saveButton));
      check(pathOf(page) === target, `Save lands on ${target}`, `on ${page.url()}`);
      const h1 = squash(await page.locator(SEL.audienceTitle).first().innerText());
      check(h1 === AUDIENCE.name, `h1 is "${AUDIENCE.name}"`, `h1 is "${h1}"`);

      const started = Date.now();
      let size = await numberIn(page.locator(SEL.audienceSize));
      note(`right after saving, ${SEL.audienceSize} shows ${size}`);
      if (!(size > 0)) {
        size = await poll(AUDIENCE_FILL_MS, async () => {
          await visit(page, target);
          const n = await numberIn(page.locator(SEL.audienceSize));
          return n > 0 ? n : 0;
        }, 2_000);
      }
      if (size > 0) note(`${SEL.audienceSize} is ${size} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      else note(`PROBLEM: ${SEL.audienceSize} still shows 0 after ${AUDIENCE_FILL_MS / 1000} s (the decider did not fill ${target})`);
      ctx.audienceSize = size;
      ctx.audienceMembers = await page
        .locator(SEL.audienceMemberLinks)
        .evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      note(`${ctx.audienceMembers.length} member links on the first page`);
      await shot(page, 'audience.png');

      await visit(page, ROUTES.audiences);
      const row = page.locator(SEL.audienceRow(AUDIENCE.slug));
      check((await row.count()) === 1, `${ROUTES.audiences} lists ${SEL.audienceRow(AUDIENCE.slug)}`, `found ${await row.count()}`);
      const listed = await numberIn(row.locator(SEL.audienceRowSize));
      check(Number.isFinite(listed), `its ${SEL.audienceRowSize} cell is a number`, squash(await row.locator(SEL.audienceRowSize).innerText()));
      note(`the list shows size ${listed}${size > 0 && listed !== size ? ` (the audience page showed ${size})` : ''}`);
      await shot(page, 'audiences.png');
    },
  },
  {
    title: "k5. audiences: a member's 360 lists the audience",
    async run(ctx) {
      const { page } = ctx;
      if (!ctx.audienceMembers?.length) {
        throw new Skip(`${ROUTES.audience(AUDIENCE.slug)} lists no members (${SEL.audienceMemberLinks})`);
      }
      const member = new URL(ctx.audienceMembers[0], BASE).pathname;
      note(`first member: ${member}`);
      const started = Date.now();
      const listed = await poll(AUDIENCE_FILL_MS, async () => {
        await visit(page, member);
        const slugs = await page
          .locator(`${SEL.customerSegmentItems}:not(.past) code`)
          .evaluateAll((cs) => cs.map((c) => c.textContent.trim()));
        return slugs.includes(AUDIENCE.slug) ? slugs : null;
      }, 2_000);
      const section = (await page.locator(SEL.customerSegments).count())
        ? squash(await page.locator(SEL.customerSegments).innerText())
        : '(no section#segments)';
      check(!!listed, `${SEL.customerSegments} on ${member} lists ${AUDIENCE.slug}`, `it shows "${section.slice(0, 300)}"`);
      note(`listed after ${((Date.now() - started) / 1000).toFixed(1)} s among ${listed.length} audience(s)`);
    },
  },
  {
    title: 'l. analytics: every chart is there and has data',
    async run({ page }) {
      const res = await visit(page, ROUTES.analytics);
      check(res && res.status() === 200, `${ROUTES.analytics} answers 200`, `got ${res?.status()}`);
      check(pathOf(page) === ROUTES.analytics, `on ${ROUTES.analytics}`, page.url());
      await checkSignedInChrome(page);
      await shot(page, 'analytics.png');
      const seen = await page.evaluate(
        ({ names, svgValues, tableValues, caption }) =>
          names.map((name) => {
            const figures = document.querySelectorAll(`figure.chart[data-chart="${name}"]`);
            if (figures.length === 0) return { name, figures: 0 };
            const f = figures[0];
            const values = [...f.querySelectorAll(svgValues), ...f.querySelectorAll(tableValues)].map((e) =>
              e.getAttribute('data-value'),
            );
            const cap = f.querySelector(caption);
            return {
              name,
              figures: figures.length,
              svg: f.querySelectorAll('svg').length,
              table: f.querySelectorAll('table').length,
              values: values.length,
              positive: values.filter((v) => v !== null && v.trim() !== '' && Number(v) > 0).length,
              notNumbers: values.filter((v) => v === null || v.trim() === '' || !Number.isFinite(Number(v))).slice(0, 3),
              caption: cap ? cap.textContent.replace(/\s+/g, ' ').trim() : null,
            };
          }),
        { names: CHARTS, svgValues: SEL.chartSvgValues, tableValues: SEL.chartTableValues, caption: SEL.chartCaption },
      );
      const problems = [];
      for (const c of seen) {
        if (c.figures === 0) {
          problems.push(`${SEL.chart(c.name)}: missing`);
          continue;
        }
        const what = `${c.svg} svg, ${c.table} table, ${c.values} data-value (${c.positive} > 0)`;
        const bad = [];
        if (c.figures > 1) bad.push(`${c.figures} figures`);
        if (c.positive === 0) bad.push('no data-value > 0');
        if (c.notNumbers.length) bad.push(`data-value not a number: ${JSON.stringify(c.notNumbers)}`);
        if (!c.caption) bad.push('no figcaption text');
        if (bad.length) problems.push(`${SEL.chart(c.name)}: ${bad.join(', ')} [${what}]`);
        else note(`${c.name}: ${what}; caption "${c.caption.slice(0, 80)}"`);
      }
      const extra = await page
        .locator('figure.chart[data-chart]')
        .evaluateAll((fs, names) => fs.map((f) => f.dataset.chart).filter((n) => !names.includes(n)), CHARTS);
      if (extra.length) note(`other charts on the page: ${extra.join(', ')}`);
      check(problems.length === 0, `all ${CHARTS.length} charts are present with data and a caption`, problems.join('\n      '));
    },
  },
  {
    title: 'm1. live events: an accepted message and a refused batch show without reloading',
    async run(ctx) {
      const { page } = ctx;
      if (!WRITE_KEY) throw new Skip('no WRITE_KEY: nothing can be sent through the tracking API');
      const res = await visit(page, ROUTES.live);
      check(res && res.status() === 200, `${ROUTES.live} answers 200`, `got ${res?.status()}`);
      check(pathOf(page) === ROUTES.live, `on ${ROUTES.live}`, page.url());
      await checkSignedInChrome(page);
      check((await page.locator(SEL.liveTable).count()) === 1, `one ${SEL.liveTable}`);
      const after = Number((await page.getAttribute(SEL.liveTable, 'data-last')) || 0);
      note(`${await page.locator(SEL.liveRows).count()} rows on load, data-last=${after}`);
      // Gone if the page reloads: the rows must come from polling.
      await page.evaluate(() => { window.__e2eLive = true; });

      const messageId = LIVE.messageId('a');
      const sent = Date.now();
      const track = await ingestApi(ROUTES.track, { userId: LIVE.userId, event: LIVE.event, messageId });
      check(track.status === 200, `POST ${ROUTES.track} answers 200`, `got ${track.status}: ${track.text.slice(0, 300)}`);
      const batch = await ingestApi(ROUTES.batch, LIVE.invalidBatch);
      check(batch.status === 400, `POST ${ROUTES.batch} without userId/anonymousId answers 400`, `got ${batch.status}: ${batch.text.slice(0, 300)}`);
      note(`the batch's answer: ${batch.text.slice(0, 200)}`);

      const found = {};
      const probe = () =>
        page.evaluate(
          ({ rows, accepted, refused, problem, after, messageId, pattern }) => {
            const fresh = [...document.querySelectorAll(rows)].filter((tr) => Number(tr.dataset.seq) > after);
            const re = new RegExp(pattern);
            return {
              accepted: fresh.some((tr) => tr.matches(accepted) && tr.textContent.includes(messageId)),
              refused: fresh.some(
                (tr) =>
                  tr.matches(refused) &&
                  tr.textContent.includes('400') &&
                  [...tr.querySelectorAll(problem)].some((li) => re.test(li.textContent)),
              ),
            };
          },
          {
            rows: SEL.liveRows,
            accepted: SEL.liveAccepted,
            refused: SEL.liveRefused,
            problem: SEL.liveProblem,
            after,
            messageId,
            pattern: LIVE.problem.source,
          },
        );
      await poll(LIVE.waitMs, async () => {
        const seen = await probe();
        for (const k of ['accepted', 'refused']) if (seen[k] && !found[k]) found[k] = Date.now() - sent;
        return found.accepted && found.refused;
      }, 100);
      const rows = await liveRowsAfter(page, after);
      check(
        found.accepted !== undefined,
        `within ${LIVE.waitMs / 1000} s a ${SEL.liveAccepted} row shows ${messageId}`,
        `new rows: ${JSON.stringify(rows)}`,
      );
      check(
        found.refused !== undefined,
        `within ${LIVE.waitMs / 1000} s a ${SEL.liveRefused} row shows 400 and a problem ${SEL.liveProblem} naming userId or anonymousId`,
        `new rows: ${JSON.stringify(rows)}`,
      );
      note(`accepted row after ${found.accepted} ms, refused row after ${found.refused} ms (the page polls every 1 s)`);
      for (const r of rows) note(`row ${r.slice(0, 200)}`);
      check(await page.evaluate(() => window.__e2eLive === true), 'the page was not reloaded');
      check(!(await page.locator(SEL.liveEmpty).isVisible()), `${SEL.liveEmpty} is hidden`);
      ctx.liveLast = Math.max(after, ...(await page.locator(SEL.liveRows).evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.seq) || 0))));
      await shot(page, 'live.png');
    },
  },
  {
    title: 'm2. live events: Pause stops the feed and says Resume; Resume brings it back',
    async run(ctx) {
      const { page } = ctx;
      if (!WRITE_KEY) throw new Skip('no WRITE_KEY');
      const button = page.locator(SEL.livePause);
      check(await button.isVisible(), `${SEL.livePause} is visible (console.js unhides it)`);
      const labels = { pause: await button.getAttribute('data-pause'), resume: await button.getAttribute('data-resume') };
      const text = async () => squash(await button.innerText());
      check((await text()) === labels.pause, `it says "${labels.pause}"`, `it says "${await text()}"`);
      note(`aria-pressed=${JSON.stringify(await button.getAttribute('aria-pressed'))}`);
      await button.click();
      check((await text()) === labels.resume, `after a click it says "${labels.resume}"`, `it says "${await text()}"`);

      const messageId = LIVE.messageId('paused');
      const track = await ingestApi(ROUTES.track, { userId: LIVE.userId, event: LIVE.event, messageId });
      check(track.status === 200, `POST ${ROUTES.track} answers 200`, `got ${track.status}`);
      await page.waitForTimeout(LIVE.pausedMs);
      const row = page.locator(SEL.liveAccepted, { hasText: messageId });
      check((await row.count()) === 0, `paused, ${messageId} does not show after ${LIVE.pausedMs / 1000} s`);

      await button.click();
      check((await text()) === labels.pause, `a second click says "${labels.pause}" again`, `it says "${await text()}"`);
      const started = Date.now();
      await row.first().waitFor({ state: 'attached', timeout: LIVE.waitMs }).catch(() => {});
      check((await row.count()) === 1, `resumed, ${messageId} shows within ${LIVE.waitMs / 1000} s`,
        JSON.stringify(await liveRowsAfter(page, ctx.liveLast ?? 0)));
      note(`it showed ${Date.now() - started} ms after resuming`);
    },
  },
  {
    title: 'm3. journeys: the abandoned cart is drawn, a checkout flows in live, the editor checks as you type',
    async run(ctx) {
      const { page } = ctx;
      if (!WRITE_KEY) throw new Skip('no WRITE_KEY: no checkout can be sent');
      let res = await visit(page, '/journeys');
      check(res && res.status() === 200, '/journeys answers 200', `got ${res?.status()}`);
      check((await page.locator('#journeys tr[data-slug="abandoned-cart"] .state-published').count()) === 1,
        'the demo\'s abandoned cart is listed as live');
      check((await page.locator('#journeys tr[data-slug="win-back"] .state-draft').count()) === 1,
        'the demo\'s win-back is listed as a draft');
      res = await visit(page, '/journeys/abandoned-cart');
      check(res && res.status() === 200, '/journeys/abandoned-cart answers 200', `got ${res?.status()}`);
      const steps = await page.locator('.journey-graph g.step').count();
      check(steps === 6, 'its graph draws its 6 steps', `${steps} drawn`);
      check((await page.locator('.journey-graph [data-edge="give-them-an-hour|timeout"]').count()) === 1,
        'the wait\'s timeout arrow is drawn with its count');
      const entered = await numberIn(page.locator('[data-total="entered"]'));
      await page.evaluate(() => { window.__e2eJourney = true; });
      const user = `e2e-cart-${Date.now()}`;
      const who = await ingestApi(ROUTES.batch, { batch: [
        { type: 'identify', userId: user, traits: { email: `${user}@example.it`, first_name: 'Prova' } },
      ] });
      check(who.status === 200, 'the customer is identified', who.text.slice(0, 200));
      await new Promise((r) => setTimeout(r, 500));
      const cart = await ingestApi(ROUTES.track, {
        userId: user, event: 'Checkout Started', properties: { cart_id: `${user}-1`, total: 89.5 },
      });
      check(cart.status === 200, 'the checkout is accepted', cart.text.slice(0, 200));
      const sent = Date.now();
      let waiting = 0;
      await poll(20_000, async () => {
        // An SVG tspan has no innerText: read its text.
        waiting = Number(await page.locator('[data-waiting="give-them-an-hour"]').first().textContent());
        return (await numberIn(page.locator('[data-total="entered"]'))) > entered && waiting >= 1;
      }, 250);
      const now = await numberIn(page.locator('[data-total="entered"]'));
      check(now === entered + 1, `entered goes from ${entered} to ${entered + 1} without a reload`, `it shows ${now}`);
      check(waiting >= 1, 'the customer shows waiting at the first step', `it shows ${waiting}`);
      check(await page.evaluate(() => window.__e2eJourney === true), 'the page was not reloaded');
      note(`the page showed the new instance after ${Date.now() - sent} ms (it polls every 3 s)`);
      await shot(page, 'journey.png');

      res = await visit(page, '/journeys/abandoned-cart/edit');
      check(res && res.status() === 200, 'the editor answers 200', `got ${res?.status()}`);
      const original = await page.locator('#journey-editor #definition').inputValue();
      const checked = () => page.waitForResponse(
        (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/journeys/check');
      let answer = checked();
      await page.locator('#journey-editor #definition').fill(original.replace('"on_timeout": "holdout"', '"on_timeout": "nowhere"'));
      await answer;
      const problem = page.locator('#definition-status .problem');
      await problem.first().waitFor({ timeout: 5_000 });
      const text = squash(await problem.first().innerText());
      check(/give-them-an-hour › on_timeout/.test(text), 'the live check names the step and field', text);
      answer = checked();
      await page.locator('#journey-editor #definition').fill(original);
      await answer;
      await page.locator('#definition-status .ok').first().waitFor({ timeout: 5_000 });
      check(true, 'the original definition checks as valid');
      await shot(page, 'journey-editor.png');
    },
  },
  {
    title: 'm4. messages: the demo cart reminder previews for a customer, its HTML in a sandboxed frame',
    async run(ctx) {
      const { page, customer } = ctx;
      let res = await visit(page, '/messages');
      check(res && res.status() === 200, '/messages answers 200', `got ${res?.status()}`);
      check((await page.locator('#messages tr[data-slug="cart-reminder"]').count()) === 1, 'the demo\'s cart reminder is listed');
      res = await visit(page, '/messages/cart-reminder/edit');
      check(res && res.status() === 200, 'its editor answers 200', `got ${res?.status()}`);
      const who = customer && customer.id ? String(customer.id) : '';
      if (!who) throw new Skip('no customer picked');
      await page.locator('#message-editor #profile').fill(who);
      await submitAndWait(page, page.locator('#message-editor button[value="preview"]'));
      const subject = squash(await page.locator('#message-preview .subject').innerText());
      check(subject.length > 0, 'the preview shows the subject rendered for the customer', subject);
      const frame = page.frameLocator('#message-preview iframe.message-frame');
      await frame.locator('body').waitFor({ timeout: 5_000 });
      const text = squash(await frame.locator('body').innerText());
      check(/Completa/.test(text), 'the frame shows the e-mail as HTML, its button included', text.slice(0, 200));
      await page.locator('#message-preview iframe.message-frame').screenshot({ path: path.join(SHOTS, 'message-frame.png') });
      await shot(page, 'message-preview.png');
    },
  },
  {
    title: 'n1. settings: the admin adds a viewer and an admin token that works on the API',
    async run(ctx) {
      const { page } = ctx;
      await visit(page, ROUTES.customers);
      const link = page.locator(SEL.settingsLink);
      check((await link.count()) === 1, `the admin's nav has ${SEL.settingsLink}`, `found ${await link.count()}`);
      const [res] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), link.click()]);
      check(res && res.status() === 200, `${ROUTES.settings} answers 200`, `got ${res?.status()}`);
      check(pathOf(page) === ROUTES.settings, `the link leads to ${ROUTES.settings}`, page.url());
      await checkSignedInChrome(page);
      const bad = await unlabelledInputs(page);
      check(bad.length === 0, 'every input of the settings page has a <label> or aria-label', bad.join('\n      '));

      // A user.
      note(`adding ${NEW_USER.email} as ${NEW_USER.role}`);
      await page.locator(SEL.userEmail).fill(NEW_USER.email);
      await page.locator(SEL.userName).fill(NEW_USER.name);
      await page.locator(SEL.userRole).selectOption(NEW_USER.role);
      await page.locator(SEL.userPassword).fill(NEW_USER.password);
      const added = await submitAndWait(page, page.locator(`${SEL.userForm} ${SEL.submit}`).first());
      const error = (await page.locator(SEL.settingsError).count()) ? squash(await page.locator(SEL.settingsError).innerText()) : '';
      check(added && added.status() === 200, 'adding the user answers 200 in the end', `got ${added?.status()} ${error}`);
      check(pathOf(page) === ROUTES.settings, `back on ${ROUTES.settings}`, page.url());
      const done = page.locator(SEL.settingsDone);
      check((await done.count()) >= 1, `a ${SEL.settingsDone} confirms`, error || '(no message at all)');
      note(`it says "${squash(await done.first().innerText())}" (${page.url().slice(BASE.length)})`);
      const row = page.locator(SEL.userRow(NEW_USER.email));
      check((await row.count()) === 1, `a row ${SEL.userRow(NEW_USER.email)}`, `found ${await row.count()}`);
      const role = await row.locator('select[name=role]').inputValue().catch(() => '');
      check(role === NEW_USER.role, `its role is ${NEW_USER.role}`, `it shows ${JSON.stringify(role)}`);

      // An admin token, shown once.
      await page.locator(SEL.tokenName).fill(NEW_USER.tokenName);
      const created = await submitAndWait(page, page.locator(`${SEL.tokenForm} ${SEL.submit}`).first());
      check(created && created.status() === 200, 'creating the token answers 200', `got ${created?.status()}`);
      const shown = page.locator(SEL.newToken);
      check((await shown.count()) === 1, `the page shows ${SEL.newToken}`);
      const token = squash(await shown.innerText());
      check(/^pat_\S{16,}$/.test(token), `${SEL.newToken} holds a pat_ token`, `it holds ${JSON.stringify(token.slice(0, 12))}…`);
      note(`token ${token.slice(0, 8)}… (${token.length} characters); the page is ${page.url().slice(BASE.length)}`);
      const listed = squash(await page.locator(SEL.tokensSection).innerText());
      check(listed.includes(NEW_USER.tokenName), `${SEL.tokensSection} lists "${NEW_USER.tokenName}"`);
      check(!listed.includes(token), `${SEL.tokensSection}'s table does not show the whole token`);
      await shot(page, 'settings.png');

      const r = await fetch(url(ROUTES.profilesApi), { headers: { authorization: `Bearer ${token}` } });
      const body = await r.text();
      check(r.status === 200, `GET ${ROUTES.profilesApi} with the new token answers 200`, `got ${r.status}: ${body.slice(0, 200)}`);
      const n = JSON.parse(body).profiles?.length;
      note(`${n} profiles`);
      const wrong = await fetch(url(ROUTES.profilesApi), { headers: { authorization: `Bearer ${token}x` } });
      check(wrong.status === 401 || wrong.status === 403, 'a wrong token is refused', `got ${wrong.status}`);
    },
  },
  {
    title: 'n2. settings: the new viewer signs in, has no settings and cannot save audiences',
    async run(ctx) {
      const other = await ctx.browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
      other.setDefaultTimeout(15_000);
      try {
        const page = watch(ctx, await other.newPage());
        const res = await signIn(page, NEW_USER.email, NEW_USER.password);
        check(res.status() === 303, `POST ${ROUTES.login} as ${NEW_USER.email} answers 303`, `got ${res.status()}`);
        check(pathOf(page) === ROUTES.customers, `lands on ${ROUTES.customers}`, page.url());
        const who = squash(await page.locator('header .who').innerText().catch(() => ''));
        note(`header: "${who}"`);
        check(who.includes(NEW_USER.email), `the header names ${NEW_USER.email}`);
        check((await page.locator(SEL.settingsLink).count()) === 0, `no ${SEL.settingsLink} in the viewer's nav`);

        const settings = await visit(page, ROUTES.settings);
        check(settings && settings.status() === 403, `GET ${ROUTES.settings} answers 403`, `got ${settings?.status()}`);
        note(`it says "${squash(await page.locator('main').innerText()).slice(0, 120)}"`);
        const post = await page.evaluate(async () => {
          const r = await fetch('/settings/create-token', {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: `csrf=${encodeURIComponent(document.body.dataset.csrf || '')}&name=viewer-token`,
            redirect: 'manual',
          });
          return r.status;
        });
        check(post === 403, 'POST /settings/create-token as the viewer (with its CSRF token) answers 403', `got ${post}`);

        const editor = await visit(page, ROUTES.audienceNew);
        check(editor && editor.status() === 200, `${ROUTES.audienceNew} answers 200`, `got ${editor?.status()}`);
        check((await page.locator(SEL.saveButton).count()) === 0, `no ${SEL.saveButton} for a viewer`);
        check((await page.locator(SEL.previewButton).count()) === 1, `${SEL.previewButton} is still there`);
        await visit(page, ROUTES.audiences);
        check((await page.locator(SEL.newAudienceLink).count()) === 0, `no ${SEL.newAudienceLink} on ${ROUTES.audiences}`,
          `found ${await page.locator(SEL.newAudienceLink).count()}`);
      } finally {
        await other.close();
      }
    },
  },
  {
    title: 'o. analytics in Italian: the chart titles are Italian, ?lang=en switches back',
    async run({ page }) {
      await visit(page, `${ROUTES.analytics}?lang=en`);
      const titles = async () =>
        page.locator('figure.chart[data-chart] h2').evaluateAll((hs) =>
          Object.fromEntries(hs.map((h) => [h.closest('figure').dataset.chart, h.textContent.replace(/\s+/g, ' ').trim()])),
        );
      const english = await titles();
      const res = await visit(page, `${ROUTES.analytics}?lang=it`);
      check(res && res.status() === 200, `${ROUTES.analytics}?lang=it answers 200`, `got ${res?.status()}`);
      const lang = await page.getAttribute('html', 'lang');
      check(lang === 'it', '<html lang="it">', `got ${JSON.stringify(lang)}`);
      const growth = squash(await page.locator(SEL.chartTitle('growth')).innerText().catch(() => ''));
      check(growth === WORDS.italianChart, `${SEL.chartTitle('growth')} is "${WORDS.italianChart}"`, `it is "${growth}"`);
      const italian = await titles();
      const same = CHARTS.filter((c) => italian[c] === undefined || italian[c] === english[c]);
      check(same.length === 0, `all ${CHARTS.length} chart titles differ from the English ones`,
        same.map((c) => `${c}: "${italian[c]}"`).join(', '));
      note(CHARTS.map((c) => `${c}: "${italian[c]}"`).join('; '));
      await shot(page, 'analytics-it.png');
      await visit(page, `${ROUTES.analytics}?lang=en`);
      const back = await page.getAttribute('html', 'lang');
      check(back === 'en', '?lang=en gives <html lang="en">', `got ${JSON.stringify(back)}`);
      const again = squash(await page.locator(SEL.chartTitle('growth')).innerText());
      check(again === english.growth, `the growth chart is "${english.growth}" again`, `it is "${again}"`);
    },
  },
  {
    title: `p. narrow screens (${NARROW.viewport.width}×${NARROW.viewport.height}): no page scrolls sideways`,
    async run(ctx) {
      const narrow = await ctx.browser.newContext({
        viewport: NARROW.viewport,
        locale: 'en-GB',
        storageState: await ctx.context.storageState(),
      });
      narrow.setDefaultTimeout(15_000);
      const failures = [];
      try {
        const page = watch(ctx, await narrow.newPage());
        const pages = [...NARROW.pages, ...NARROW.alsoLook.map(([n, t]) => [n, t, 'report only'])];
        for (const [name, target, reportOnly] of pages) {
          const p =
            target === 'customer' ? ctx.customerPath ?? ROUTES.customer(ctx.customer.id)
            : target === 'audience' ? ROUTES.audience(AUDIENCE.slug)
            : target;
          const res = await visit(page, p);
          check(res && res.status() === 200, `${p} answers 200`, `got ${res?.status()} on ${page.url()}`);
          const report = await sidewaysReport(page);
          await shot(page, `mobile-${name}.png`);
          const sizes = `scrollWidth ${report.scrollWidth}, innerWidth ${report.innerWidth}, clientWidth ${report.clientWidth}`;
          if (report.ok) {
            console.log(`    ${reportOnly ? '--' : 'ok'}  ${p}: no sideways scrolling (${sizes})${reportOnly ? ` (${reportOnly})` : ''}`);
            continue;
          }
          const lines = [`${p}: the page scrolls sideways (${sizes})${reportOnly ? ` (${reportOnly})` : ''}`];
          lines.push(`  outermost elements past the right edge:${report.offenders.length ? '' : ' none'}`);
          for (const o of report.offenders) {
            lines.push(`    ${o.path}  right=${o.right} width=${o.width}  {${o.css}}  "${o.text}"`);
            if (o.table) {
              lines.push(`      in ${o.table.wrapper}; columns: ${o.table.columns.join(' | ')}`);
              for (const c of o.table.widestCells) lines.push(`      cell ${c}`);
            }
          }
          if (report.insideBoxes.length) {
            lines.push('  elements past the edge inside boxes with their own overflow:');
            for (const t of report.insideBoxes) lines.push(`    ${t}`);
          }
          if (report.textSpills.length) {
            lines.push('  text running past its box:');
            for (const t of report.textSpills) lines.push(`    ${t}`);
          }
          lines.push(`  deepest elements past the edge, widest first:${report.widest.length ? '' : ' none'}`);
          for (const o of report.widest) lines.push(`    ${o.path}  right=${o.right} width=${o.width}`);
          for (const l of lines) console.log(`    ${reportOnly ? '--' : '!!'}  ${l}`);
          if (!reportOnly) {
            const o = report.offenders[0];
            failures.push(`${p}: ${report.scrollWidth}px wide${o ? `, ${o.path} right=${o.right}` : ''} (details above)`);
          }
        }
      } finally {
        await narrow.close();
      }
      check(failures.length === 0, `none of the ${NARROW.pages.length} pages scrolls sideways`, failures.join('; '));
    },
  },
  {
    title: 'i. CSRF: POST /logout without the token is refused',
    async run({ page }) {
      const bare = await page.evaluate(async (p) => {
        const r = await fetch(p, { method: 'POST', redirect: 'manual' });
        return { status: r.status, type: r.type };
      }, ROUTES.logout);
      check(bare.status === 403, 'POST /logout without csrf answers 403', `got ${bare.status} (${bare.type})`);
      const wrong = await page.evaluate(async (p) => {
        const r = await fetch(p, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'csrf=not-the-token',
        });
        return { status: r.status, type: r.type };
      }, ROUTES.logout);
      check(wrong.status === 403, 'POST /logout with a wrong csrf answers 403', `got ${wrong.status} (${wrong.type})`);
      await visit(page, ROUTES.customers);
      check(pathOf(page) === ROUTES.customers, 'still signed in afterwards', `on ${page.url()}`);
    },
  },
  {
    title: 'h. sign out',
    async run(ctx) {
      const { page, browser } = ctx;
      await submitAndWait(page, page.locator(SEL.logoutButton).first());
      check(pathOf(page) === ROUTES.login, `back on ${ROUTES.login}`, `on ${page.url()}`);
      await visit(page, ROUTES.customers);
      check(pathOf(page) === ROUTES.login, `${ROUTES.customers} redirects to ${ROUTES.login} again`, `on ${page.url()}`);
      // The server forgets the session: its old cookie no longer signs anyone in.
      const other = await browser.newContext();
      try {
        await other.addCookies(ctx.sessionCookies);
        const p2 = await other.newPage();
        await p2.goto(url(ROUTES.customers), { waitUntil: 'load' });
        check(
          new URL(p2.url()).pathname === ROUTES.login,
          'the signed-out session cookie is refused',
          `it opened ${p2.url()}`,
        );
      } finally {
        await other.close();
      }
    },
  },
  {
    title: 'no server errors and no script errors along the way',
    async run(ctx) {
      check(ctx.serverErrors.length === 0, 'no 5xx answers', ctx.serverErrors.join(', '));
      check(ctx.pageErrors.length === 0, 'no uncaught errors in page scripts', ctx.pageErrors.join('\n      '));
    },
  },
];

// ---------------------------------------------------------------------------------------
// Runner
// ---------------------------------------------------------------------------------------
async function main() {
  mkdirSync(SHOTS, { recursive: true });
  for (const stale of ['failure.png', 'failure.html']) rmSync(path.join(SHOTS, stale), { force: true });
  const started = Date.now();
  const customer = await pickCustomer();

  // launch() gives every run a fresh temporary profile (user-data-dir) and removes it after.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.HEADED,
    args: [
      ...(process.env.HEADED ? [] : ['--headless']),
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  console.log(`console e2e: Chromium ${browser.version()} against ${BASE}`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(30_000);
  const page = await context.newPage();
  const ctx = { browser, context, page, customer, serverErrors: [], pageErrors: [] };
  page.on('response', (r) => {
    if (r.status() >= 500) ctx.serverErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('pageerror', (e) => ctx.pageErrors.push(String(e)));

  let passed = 0;
  let skipped = 0;
  let failed = 0;
  for (const [i, step] of STEPS.entries()) {
    currentStep = step.title;
    console.log(`[${i + 1}/${STEPS.length}] ${step.title}`);
    const stepStarted = Date.now();
    try {
      await step.run(ctx);
      passed++;
      console.log(`    (${((Date.now() - stepStarted) / 1000).toFixed(1)} s)`);
    } catch (e) {
      if (e instanceof Skip) {
        note(`skipped: ${e.message}`);
        skipped++;
        continue;
      }
      failed++;
      console.error(`\nFAILED: ${step.title}\n  ${e.message}`);
      if (!(e instanceof assert.AssertionError)) console.error(e.stack);
      console.error(`  page: ${page.url()}`);
      try {
        await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true });
        writeFileSync(path.join(SHOTS, 'failure.html'), await page.content());
        console.error(`  saved ${path.relative(ROOT, SHOTS)}/failure.png and failure.html`);
      } catch (err) {
        console.error(`  (could not save the page: ${err.message})`);
      }
      const rest = STEPS.length - i - 1;
      if (rest) console.error(`  ${rest} later step(s) not run`);
      break;
    }
  }
  await browser.close();
  const notRun = STEPS.length - passed - skipped - failed;
  console.log(`\nconsole e2e finished in ${((Date.now() - started) / 1000).toFixed(1)} s${notRun ? `; ${notRun} step(s) not run` : ''}`);
  console.log(`console-e2e: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(`console e2e: ${currentStep ? `in "${currentStep}": ` : ''}${e.stack || e}`);
  process.exit(1);
});
