// When the event stream cannot be opened (a proxy that drops it, say), the dashboard says so and
// keeps its counts current by polling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, lifelineUp, api, until } from './support.mjs';

let browser;
let up;

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

test('without a stream the dashboard polls and stays current', async () => {
  const page = await browser.newPage();
  await page.route('**/v1/events*', (route) => route.abort());
  await page.goto(up.url);
  await page.locator('[data-connection="polling"]').waitFor({ timeout: 30000 });
  const f = await api(up.base, up.token, 'POST', '/v1/functions', { name: 'hi', kind: 'shell', command: 'echo hi' });
  const endpoints = await api(up.base, up.token, 'GET', '/v1/endpoints');
  const local = endpoints.find((e) => e.name === 'local').endpoint_id;
  const { task_ids: ids } = await api(up.base, up.token, 'POST', `/v1/endpoints/${local}/submit`, { tasks: [{ function_id: f.function_id }] });
  await until('the finished task counted', async () =>
    (await page.locator('svg.diagram [data-state="success"]').getAttribute('data-count')) === '1', 30000);
  await until('the task listed', async () => (await page.locator(`[data-task-id="${ids[0]}"]`).count()) === 1, 30000);
  assert.equal(await page.locator('[data-connection]').getAttribute('data-connection'), 'polling');
  await page.close();
});
