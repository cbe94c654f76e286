// Filtering the task list by an edge of the life cycle asks the service which tasks took it, so
// a reload or a shared link shows them all, not only the moves seen since the page loaded; the
// edge is highlighted; an empty result says why and offers to clear the filter; edges are
// reachable from the keyboard.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchBrowser, openPage, lifelineUp, api, until, axeViolations, SCREENSHOTS, untilFinished } from './support.mjs';

const SOURCE = `import os

def ok(n):
    return n

def flaky(marker):
    if not os.path.exists(marker):
        open(marker, 'w').close()
        os.kill(os.getpid(), 9)
    return 'survived'
`;

let browser;
let up;
let oks;
let flaky;

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
  const local = (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'local').endpoint_id;
  const register = async (name) =>
    (await api(up.base, up.token, 'POST', '/v1/functions', { name, kind: 'python', source: SOURCE, entrypoint: name })).function_id;
  const fn = { ok: await register('ok'), flaky: await register('flaky') };
  const submit = async (function_id, args) =>
    (await api(up.base, up.token, 'POST', `/v1/endpoints/${local}/submit`, { tasks: args.map((a) => ({ function_id, args: a })) })).task_ids;
  oks = await submit(fn.ok, Array.from({ length: 25 }, (_, i) => [i]));
  [flaky] = await submit(fn.flaky, [[join(up.home, 'flaky-marker')]]);
  await untilFinished(up, [...oks, flaky], 'every task finished', 60000);
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

const listed = (page) => page.locator('[data-testid="task-count"]').textContent();

test('a shared link filtered by an edge lists every task that took it', async () => {
  // Opened after the tasks finished: the page saw none of these moves happen.
  const { page, errors } = await openPage(browser, `${up.base}/?edge=running%3Esuccess#token=${up.token}`);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('26 tasks listed', async () => (await listed(page)) === '26 tasks');
  const edge = page.locator('svg.diagram .edge-group[data-from="running"][data-to="success"]');
  assert.match(await edge.getAttribute('class'), /selected/);
  assert.equal(await edge.getAttribute('aria-pressed'), 'true');
  assert.match(await page.locator('.active-filter').textContent(), /took running → success/);
  await page.screenshot({ path: join(SCREENSHOTS, 'edge-filter.png') });

  // A retry loop: the flaky task took it, though it has since succeeded.
  await page.goto(`${up.base}/?edge=running%3Ewaiting-for-nodes`);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('the retried task listed', async () => (await listed(page)) === '1 task');
  assert.equal(await page.locator(`[data-task-id="${flaky}"]`).count(), 1);

  // An edge nobody took: the list says so and offers a way out.
  await page.goto(`${up.base}/?edge=received%3Ecancelled`);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  const empty = page.locator('[data-testid="empty-list"]');
  await until('the reason shown', async () => /No task took received → cancelled\./.test(await empty.textContent()));
  await page.screenshot({ path: join(SCREENSHOTS, 'edge-filter-empty.png') });
  for (const theme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: theme });
    assert.deepEqual(await axeViolations(page), [], `the empty list in the ${theme} theme`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await empty.locator('button').click();
  await until('all tasks again', async () => (await listed(page)) === '26 tasks');
  assert.ok(!page.url().includes('edge='), page.url());
  await page.close();
  assert.deepEqual(errors, []);
});

test('edges are reachable from the keyboard', async () => {
  const { page } = await openPage(browser, up.url);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await page.locator('#diagram-state-cancelled').focus();
  // Past the last state come the edges, in the model's order.
  await page.keyboard.press('ArrowRight');
  const focused = await page.evaluate(() => document.activeElement?.getAttribute('data-from'));
  assert.equal(focused, 'received');
  // Move to running → success and choose it.
  for (let i = 0; i < 40; i++) {
    const at = await page.evaluate(() => `${document.activeElement?.getAttribute('data-from')}>${document.activeElement?.getAttribute('data-to')}`);
    if (at === 'running>success') break;
    await page.keyboard.press('ArrowRight');
  }
  assert.match(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), /^running → success/);
  await page.keyboard.press('Enter');
  await until('filtered by the edge', async () => page.url().includes('edge=running%3Esuccess'));
  await until('26 tasks listed', async () => (await listed(page)) === '26 tasks');
  await page.close();
});
