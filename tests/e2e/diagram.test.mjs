// The built dashboard, opened in headless Chromium, draws every state of the life cycle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { serveDist, launchBrowser, openPage, SCREENSHOTS } from './support.mjs';

// The state wire values are a public contract: `data-state` carries them.
const STATES = ['received', 'waiting-for-ep', 'dispatched-to-ep', 'waiting-for-nodes',
  'waiting-for-launch', 'running', 'success', 'failed', 'cancelled'];

let site;
let browser;

before(async () => {
  site = await serveDist();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  site?.server.close();
});

test('the page shows every state of the diagram with its count', async () => {
  const { page, errors } = await openPage(browser, site.url);
  await page.locator('svg.diagram [data-state]').first().waitFor({ timeout: 15000 });
  const shown = await page.locator('svg.diagram [data-state]').evaluateAll(
    (nodes) => nodes.map((n) => [n.getAttribute('data-state'), n.getAttribute('data-count'), n.getAttribute('aria-label')]));
  assert.deepEqual(shown.map(([state]) => state).sort(), [...STATES].sort());
  for (const [state, count, label] of shown) {
    assert.equal(count, '0', `${state} has a count`);
    assert.match(label, /: 0 tasks$/, `${state} is readable as text`);
  }
  assert.ok(await page.locator('svg.diagram path.edge-retry').count() >= 6, 'retry loops are drawn');
  assert.ok(await page.locator('svg.diagram path.edge-cancel').count() >= 6, 'cancel edges are drawn');
  await page.screenshot({ path: join(SCREENSHOTS, 'diagram.png'), fullPage: true });
  assert.deepEqual(errors, []);
});
