// The task list is a window over the service's pages, not a copy of every task: with more tasks
// stored than a window holds, the page draws only the rows on screen, says how many there are,
// reaches the oldest task by scrolling or with End, and filters and searches through the
// service's listing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, openPage, lifelineUp, api, until } from './support.mjs';

const STORED = 2000;

let browser;
let up;
let ids;

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
  // An endpoint that never connects: its tasks wait for it, and stay put.
  const far = (await api(up.base, up.token, 'POST', '/v1/endpoints', { name: 'far-away' })).endpoint_id;
  const fn = await api(up.base, up.token, 'POST', '/v1/functions', { name: 'noop', kind: 'shell', command: 'true' });
  ({ task_ids: ids } = await api(up.base, up.token, 'POST', `/v1/endpoints/${far}/submit`,
    { tasks: Array.from({ length: STORED }, () => ({ function_id: fn.function_id })) }));
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

const count = (page) => page.locator('[data-testid="task-count"]').textContent();

test('a long list draws only what is on screen and reaches its oldest task', async () => {
  const { page, errors } = await openPage(browser, up.url);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until(`${STORED} tasks counted`, async () => (await count(page)) === `${STORED} tasks`);
  const newest = ids.at(-1);
  const oldest = ids[0];
  await page.locator(`[data-task-id="${newest}"]`).waitFor();
  assert.ok(await page.locator('[data-task-id]').count() < 100, 'only the rows on screen are drawn');

  // Scrolled to the end: the oldest task, in the last position of the grid.
  await page.locator('#task-grid').evaluate((g) => { g.scrollTop = g.scrollHeight; });
  const last = page.locator(`[data-task-id="${oldest}"]`);
  await last.waitFor();
  assert.equal(await last.getAttribute('aria-rowindex'), String(STORED + 1));
  assert.equal(await page.locator(`[data-task-id="${newest}"]`).count(), 0, 'the top is not drawn');

  // The keyboard: Home, then End, moves the cursor to the first and the last task.
  await page.locator('#task-grid').focus();
  await page.keyboard.press('Home');
  const active = () => page.locator('#task-grid').getAttribute('aria-activedescendant');
  await until('the cursor on the newest task', async () => (await active()) === `task-row-${newest}`);
  await page.keyboard.press('End');
  await until('the cursor on the oldest task', async () => (await active()) === `task-row-${oldest}`);

  // Filtered by state through the service, counted from the statistics.
  await page.locator('select[aria-label="State"]').selectOption('waiting-for-ep');
  await until('every task waits', async () => (await count(page)) === `${STORED} tasks`);
  await page.locator('select[aria-label="State"]').selectOption('running');
  await until('none runs', async () => (await count(page)) === '0 tasks');
  await page.locator('select[aria-label="State"]').selectOption('');

  // A search finds the oldest task by the end of its id.
  await page.locator('#search').fill(oldest.slice(-8));
  await until('one task found', async () => (await count(page)) === '1 task');
  await page.locator(`[data-task-id="${oldest}"]`).waitFor();
  await page.close();
  assert.deepEqual(errors, []);
});
