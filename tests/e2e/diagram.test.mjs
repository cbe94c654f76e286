// The built dashboard served by a static host (not the service), pointed at a real service by
// its URL fragment, draws every state of the life cycle; without a token it asks for one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { serveDist, launchBrowser, openPage, lifelineUp, axeViolations, SCREENSHOTS } from './support.mjs';

// The state wire values are a public contract: `data-state` carries them.
const STATES = ['received', 'waiting-for-ep', 'dispatched-to-ep', 'waiting-for-nodes',
  'waiting-for-launch', 'running', 'success', 'failed', 'cancelled'];

let site;
let browser;
let up;

before(async () => {
  site = await serveDist();
  browser = await launchBrowser();
  up = await lifelineUp({ env: { LIFELINE_CORS_ORIGINS: '*' } });
});

after(async () => {
  await browser?.close();
  site?.server.close();
  await up?.stop();
});

test('without a token the dashboard asks for one', async () => {
  const { page, errors } = await openPage(browser, site.url);
  await page.locator('form input#token').waitFor({ timeout: 15000 });
  await page.screenshot({ path: join(SCREENSHOTS, 'sign-in.png') });
  assert.deepEqual(errors, []);
  await page.close();
});

test('the sign-in form uses the service URL typed into it, and says what went wrong in one sentence', async () => {
  const { page, errors } = await openPage(browser, site.url);
  const signIn = async (token, service) => {
    await page.locator('input#token').fill(token);
    await page.locator('input#service').fill(service);
    await page.locator('form button[type="submit"]').click();
  };
  const notice = async () => {
    const text = await page.locator('[data-testid="notice"]').textContent({ timeout: 15000 });
    assert.ok(!/[<{]/.test(text) && !/not found/.test(text), `no response body: ${text}`);
    assert.equal(text.split(/[.!?](?:\s|$)/).filter((s) => s.trim()).length, 1, `one sentence: ${text}`);
    return text;
  };
  // Empty: this static site, which is no Lifeline service (it answers 404 with a plain body).
  await signIn(up.token, '');
  assert.match(await notice(), /No Lifeline service answers at this address/);
  await page.screenshot({ path: join(SCREENSHOTS, 'sign-in-wrong-address.png') });
  for (const theme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: theme });
    assert.deepEqual(await axeViolations(page), [], `the sign-in form with an error, ${theme}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  // Nothing listens on port 9 of this machine.
  await signIn(up.token, 'http://127.0.0.1:9');
  assert.match(await notice(), /Cannot reach the service/);
  await signIn('not-a-token', up.base);
  assert.match(await notice(), /refused this token/);
  // The typed address, without its scheme, is the service.
  await signIn(up.token, new URL(up.base).host);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  assert.equal(await page.locator('[data-testid="user"]').getAttribute('data-user'), 'admin');
  // A reload stays signed in to that service.
  await page.reload();
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await page.close();
  assert.deepEqual(errors.filter((e) => !/Failed to load resource|ERR_CONNECTION_REFUSED|404/.test(e)), []);
});

test('a static copy pointed at the service shows every state with its count', async () => {
  const { page, errors } = await openPage(browser, `${site.url}#token=${up.token}&service=${encodeURIComponent(up.base)}`);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  const shown = await page.locator('svg.diagram [data-state]').evaluateAll(
    (nodes) => nodes.map((n) => [n.getAttribute('data-state'), n.getAttribute('data-count'), n.getAttribute('aria-label')]));
  assert.deepEqual(shown.map(([state]) => state).sort(), [...STATES].sort());
  for (const [state, count, label] of shown) {
    assert.match(count, /^\d+$/, `${state} has a count`);
    assert.match(label, /: \d+ tasks?$/, `${state} is readable as text`);
  }
  assert.ok(await page.locator('svg.diagram path.edge-retry').count() >= 2, 'retry loops are drawn');
  assert.ok(await page.locator('svg.diagram path.edge-requeue').count() >= 4, 'requeue loops are drawn');
  assert.ok(await page.locator('svg.diagram path.edge-cancel').count() >= 6, 'cancel edges are drawn');
  await page.screenshot({ path: join(SCREENSHOTS, 'diagram.png'), fullPage: true });
  assert.deepEqual(errors.filter((e) => !e.includes('integrity')), []);
  await page.close();
});
