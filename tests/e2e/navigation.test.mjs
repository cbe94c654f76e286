// Moving around the dashboard like any web page: Back and Forward go through pages, opened tasks
// and filters without leaving the app (typing in the search box does not fill the history), the
// tab's title says the page and what the tasks are doing, a link to a task far down the list
// scrolls the list to its row, and the page shows a placeholder until its code has loaded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, openPage, lifelineUp, api, until, untilFinished } from './support.mjs';

let browser;
let up;
let ids;

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
  const local = (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'local').endpoint_id;
  const f = await api(up.base, up.token, 'POST', '/v1/functions', { name: 'hi', kind: 'shell', command: 'true' });
  ({ task_ids: ids } = await api(up.base, up.token, 'POST', `/v1/endpoints/${local}/submit`,
    { tasks: Array.from({ length: 120 }, () => ({ function_id: f.function_id })) }));
  await untilFinished(up, ids, 'the tasks finished', 60000);
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

test('Back and Forward move through pages, tasks and filters, within the app', async () => {
  const { page, errors } = await openPage(browser, up.url);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('the title counts the tasks', async () => (await page.title()) === 'Life cycle · 120 succeeded · Lifeline');
  const home = page.url();

  await page.locator('[data-page="endpoints"]').click();
  await page.locator('[data-endpoint-row]').first().waitFor();
  assert.equal(await page.title(), 'Endpoints · 120 succeeded · Lifeline');
  await page.locator('[data-page="overview"]').click();
  await page.locator('[data-total="success"]').waitFor();
  await page.goBack();
  await page.locator('[data-endpoint-row]').first().waitFor();
  assert.ok(page.url().includes('view=endpoints'), page.url());
  await page.goBack();
  await page.locator('svg.diagram').waitFor();
  assert.equal(page.url(), home);
  await page.goForward();
  await page.locator('[data-endpoint-row]').first().waitFor();
  await page.goBack();
  await page.locator('svg.diagram').waitFor();

  // A filter, a search (not a history entry per key) and a task.
  await page.locator('svg.diagram [data-state="success"]').click();
  await page.locator('#search').fill(ids[119].slice(-6));
  await page.locator(`[data-task-id="${ids[119]}"]`).click();
  await page.locator(`[data-task-detail="${ids[119]}"]`).waitFor();
  await page.goBack();
  await until('the task closed', async () => (await page.locator('[data-task-detail]').count()) === 0);
  assert.ok(page.url().includes('state=success') && page.url().includes('q='), page.url());
  await page.goBack();
  await until('the filter gone', async () => !page.url().includes('state='));
  assert.equal(page.url(), home, 'the typing was one entry with the filter');
  await page.locator('svg.diagram').waitFor();
  await page.close();
  assert.deepEqual(errors, []);
});

test('a link to a task far down the list opens it with its row in view', async () => {
  const oldest = ids[0];
  const { page } = await openPage(browser, `${up.base}/?task=${oldest}#token=${up.token}`);
  await page.locator(`[data-task-detail="${oldest}"] [data-status="success"]`).waitFor({ timeout: 20000 });
  const row = page.locator(`[data-task-id="${oldest}"]`);
  await until('the row in the list\'s view', async () => {
    if ((await row.count()) === 0) return false;
    return row.evaluate((r) => {
      const grid = document.getElementById('task-grid').getBoundingClientRect();
      const box = r.getBoundingClientRect();
      return box.top >= grid.top && box.bottom <= grid.bottom;
    });
  });
  assert.equal(await row.getAttribute('aria-selected'), 'true');

  // Once shown, the list can be scrolled away from the open task while tasks keep moving.
  await page.locator('#task-grid').evaluate((g) => { g.scrollTop = 0; });
  const local = (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'local').endpoint_id;
  const f = await api(up.base, up.token, 'POST', '/v1/functions', { name: 'more', kind: 'shell', command: 'true' });
  const { task_ids: [fresh] } = await api(up.base, up.token, 'POST', `/v1/endpoints/${local}/submit`, { tasks: [{ function_id: f.function_id }] });
  await page.locator(`[data-task-id="${fresh}"][data-state="success"]`).waitFor({ timeout: 30000 });
  assert.equal(await page.locator('#task-grid').evaluate((g) => g.scrollTop), 0, 'the list stays where it was scrolled');
  await page.close();
});

test('the page shows a placeholder until the dashboard has loaded', async () => {
  const html = await (await fetch(`${up.base}/`)).text();
  // The release build's page is minified: its attribute values may go unquoted.
  assert.match(html, /id="?loading"?[ >][^>]*>[\s\S]*Loading the dashboard/);
  const { page } = await openPage(browser, up.url);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  assert.equal(await page.locator('#loading').count(), 0, 'the placeholder gives way');
  await page.close();
});
