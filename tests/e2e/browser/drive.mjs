// Drives Debian's Chromium (headless, through playwright-core, which never downloads a
// browser) through the pages of tests/e2e/test_browser.py and prints what happened as one
// JSON line on stdout: every request the pages made to the API (method, URL, headers, the
// body's shape, the answer or the failure), the console, the form's answer, the versions.
//
// Input, a JSON object on stdin:
//   chromium        the browser executable (/usr/bin/chromium)
//   hostRules       Chromium's --host-resolver-rules: the pages' origin -> the static server
//   api             the API's base URL (requests to it are recorded)
//   deliveryTimeoutMs  how long a visit waits for its events to be delivered
//   visits          [{name, url, expect: {userId: [event types]}, formId?}]: each visit opens
//                   its page in a fresh context (no shared storage), all at once; it waits
//                   until every expected event got a 2xx (or the timeout), then submits the
//                   form, if any, as a visitor would.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGES = ['playwright-core', '@segment/analytics-next', '@rudderstack/analytics-js'];
// What the brief of every e2e browser run asks of Chromium on a machine without a network:
// without the background-networking flags it keeps trying to reach Google's services.
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const input = JSON.parse(readFileSync(0, 'utf8'));
const version = (name) => JSON.parse(readFileSync(join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version;
const versions = Object.fromEntries(PACKAGES.map((name) => [name, version(name)]));

function bodyShape(request) {
  return shapeOf(request.postData());
}

function shapeOf(raw) {
  if (raw === null || raw === undefined) return { kind: 'none' };
  const shape = { bytes: Buffer.byteLength(raw) };
  try {
    const json = JSON.parse(raw);
    const events = Array.isArray(json.batch) ? json.batch : [json];
    return {
      ...shape, kind: 'json', keys: Object.keys(json).sort(),
      batch: Array.isArray(json.batch),
      events: events.map((e) => ({
        type: e.type, userId: e.userId ?? null, anonymousId: e.anonymousId ?? null, event: e.event,
        keys: Object.keys(e).sort(), traitsAt: ['traits', 'context.traits'].filter((k) => k.split('.').reduce((o, p) => o?.[p], e)),
        library: e.context?.library ?? null,
      })),
    };
  } catch {
    return { ...shape, kind: 'text', text: raw.slice(0, 300) };
  }
}

const started = Date.now();
const browser = await chromium.launch({ executablePath: input.chromium, headless: true,
  args: [...FLAGS, `--host-resolver-rules=${input.hostRules}`] });
const out = { versions: { chromium: browser.version(), ...versions }, requests: [], console: [], pageErrors: [],
  visits: {} };

async function visit({ name, url, expect, formId }, userAgent) {
  const result = { undelivered: null, form: null };
  out.visits[name] = result;
  const context = await browser.newContext({ userAgent });
  // A beacon's body is not in the browser's network events: note what the page hands
  // navigator.sendBeacon (observed only; the beacon goes out unchanged).
  const beacons = [];
  await context.exposeFunction('__e2eBeacon', (url, body) => { beacons.push({ url, body }); });
  await context.addInitScript(() => {
    const send = navigator.sendBeacon.bind(navigator);
    navigator.sendBeacon = (url, data) => {
      const text = typeof data === 'string' ? Promise.resolve(data)
        : data instanceof Blob ? data.text() : Promise.resolve(null);
      text.then((body) => window.__e2eBeacon(String(url), body));
      return send(url, data);
    };
  });
  const page = await context.newPage();
  page.on('console', (m) => out.console.push(`${name} ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => out.pageErrors.push(`${name} ${e}`));

  const byRequest = new Map();
  page.on('request', (request) => {
    if (!request.url().startsWith(input.api)) return;
    const entry = { visit: name, at: Date.now() - started, method: request.method(), url: request.url(),
      path: new URL(request.url()).pathname, resourceType: request.resourceType(), headers: request.headers(),
      body: bodyShape(request), status: null, failure: null };
    byRequest.set(request, entry);
    out.requests.push(entry);
    request.allHeaders().then((h) => { entry.headers = h; }, () => {});
  });
  page.on('response', (response) => {
    const entry = byRequest.get(response.request());
    if (!entry) return;
    entry.status = response.status();
    entry.responseHeaders = Object.fromEntries(Object.entries(response.headers()).filter(([k]) =>
      k.startsWith('access-control-') || k.startsWith('x-leadscore-')
      || ['content-type', 'location', 'cache-control'].includes(k)));
  });
  page.on('requestfailed', (request) => {
    const entry = byRequest.get(request);
    if (entry) entry.failure = request.failure()?.errorText ?? 'failed';
  });

  const undelivered = () => {
    const done = {};
    const sentBeacons = [...byRequest.values()].filter((e) => e.resourceType === 'ping' || e.path.startsWith('/beacon/'));
    sentBeacons.forEach((entry, i) => {
      if (entry.body.kind === 'none' && beacons[i]) entry.body = { ...shapeOf(beacons[i].body), from: 'sendBeacon' };
    });
    for (const entry of byRequest.values()) {
      if (entry.method !== 'POST' || entry.status === null || entry.status >= 300) continue;
      for (const e of entry.body.events ?? []) (done[e.userId] ??= new Set()).add(e.type);
    }
    return Object.entries(expect).flatMap(([user, types]) =>
      types.filter((t) => !done[user]?.has(t)).map((t) => `${user} ${t}`));
  };

  await page.goto(url, { waitUntil: 'load' });
  const deadline = Date.now() + input.deliveryTimeoutMs;
  while (undelivered().length && Date.now() < deadline) await page.waitForTimeout(100);
  result.undelivered = undelivered();
  result.pixel = await page.evaluate(() => {
    const img = document.getElementById('pixel');
    return img && { complete: img.complete, naturalWidth: img.naturalWidth, src: img.src };
  });
  result.analyticsJs = await page.evaluate(() => ({ initialized: Boolean(window.analytics?.initialized),
    version: window.analytics?.VERSION ?? null }));

  if (formId) {
    // The form, as a visitor submits it: the API answers 303 and the browser follows it.
    const formAnswer = page.waitForResponse((r) => r.url().endsWith(`/v1/forms/${formId}`), { timeout: 10000 });
    await page.click(`form[action$="/v1/forms/${formId}"] button[type=submit]`);
    const answer = await formAnswer;
    const location = answer.headers().location;
    if (location) await page.waitForURL(location, { timeout: 10000 });
    result.form = { status: answer.status(), location: location ?? null, finalUrl: page.url(),
      title: await page.title() };
  }
  await context.close();
}

try {
  // Chromium's own user agent, as a headed Chromium sends it ("HeadlessChrome" is a bot).
  const probe = await browser.newPage();
  out.userAgent = (await probe.evaluate(() => navigator.userAgent)).replace('HeadlessChrome/', 'Chrome/');
  await probe.close();
  await Promise.all(input.visits.map((v) => visit(v, out.userAgent)));
} finally {
  await browser.close();
  out.seconds = (Date.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
