// Replay: a moment the test recorded (by its event number, or by its time in RFC 3339) shows the
// diagram and the task list as they were then, the connection indicator says replay, the
// timeline's slider moves through the history from the keyboard, Play runs forward to now and
// Live returns to it. The replayed page passes axe-core in both themes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchBrowser, openPage, lifelineUp, api, until, axeViolations, SCREENSHOTS, untilFinished } from './support.mjs';

let browser;
let up;
let earlier;

const count = (page, state) => page.locator(`svg.diagram [data-state="${state}"]`).getAttribute('data-count');
const listed = (page) => page.locator('[data-testid="task-count"]').textContent();

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
  const local = (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'local').endpoint_id;
  const ok = await api(up.base, up.token, 'POST', '/v1/functions', { name: 'ok', kind: 'shell', command: 'true' });
  const bad = await api(up.base, up.token, 'POST', '/v1/functions', { name: 'bad', kind: 'shell', command: 'exit 3' });
  const submit = async (function_id, n) => (await api(up.base, up.token, 'POST', `/v1/endpoints/${local}/submit`,
    { tasks: Array.from({ length: n }, () => ({ function_id })), max_retries: 0 })).task_ids;
  const first = await submit(ok.function_id, 3);
  await untilFinished(up, first, 'the first tasks finished', 60000);
  // The moment to replay: three tasks succeeded, nothing failed yet.
  const { seq } = await api(up.base, up.token, 'GET', '/v1/stats');
  const { at } = await api(up.base, up.token, 'GET', `/v1/stats?at_seq=${seq}`);
  earlier = { seq, at };
  // Later events come well after it, so that a time just after it names the same moment.
  await new Promise((r) => setTimeout(r, 1500));
  await untilFinished(up, await submit(bad.function_id, 4), 'the failing tasks finished', 60000);
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

test('a recorded moment shows its counts and its task list, and Live returns to now', async () => {
  const { page, errors } = await openPage(browser, `${up.base}/?at=${earlier.seq}#token=${up.token}`);
  await page.locator('[data-connection="replay"]').waitFor({ timeout: 20000 });
  await until('the counts of the moment', async () => (await count(page, 'success')) === '3');
  assert.equal(await count(page, 'failed'), '0');
  await until('the list as it was', async () => (await listed(page)) === '3 tasks');
  assert.equal(await page.locator('[data-testid="replay-moment"]').getAttribute('data-seq'), String(earlier.seq));
  await page.screenshot({ path: join(SCREENSHOTS, 'replay.png'), fullPage: true });
  for (const theme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: theme });
    assert.deepEqual(await axeViolations(page), [], `the replayed moment in the ${theme} theme`);
  }
  await page.screenshot({ path: join(SCREENSHOTS, 'replay-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });

  // The slider from the keyboard: End is the newest event, where everything has happened.
  await page.locator('#replay-slider').focus();
  await page.keyboard.press('End');
  await until('the newest moment', async () => (await count(page, 'failed')) === '4');
  assert.ok(/[?&]at=\d+/.test(page.url()), page.url());
  await page.keyboard.press('Home');
  await until('the first event', async () => (await count(page, 'success')) === '0');

  await page.locator('[data-testid="live"]').click();
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  assert.ok(!page.url().includes('at='), page.url());
  await until('the counts of now', async () => (await count(page, 'failed')) === '4' && (await count(page, 'success')) === '3');
  await until('every task listed', async () => (await listed(page)) === '7 tasks');
  await page.close();
  assert.deepEqual(errors, []);
});

test('a time in the address replays the moment, and Play runs forward to now', async () => {
  const time = new Date(earlier.at * 1000 + 500).toISOString();
  const { page, errors } = await openPage(browser, `${up.base}/?at=${encodeURIComponent(time)}#token=${up.token}`);
  await page.locator('[data-connection="replay"]').waitFor({ timeout: 20000 });
  await until('the counts of the moment', async () => (await count(page, 'success')) === '3');
  assert.equal(await count(page, 'failed'), '0');
  await page.locator('[data-play="100"]').click();
  // A hundred seconds a second passes the few seconds of history at once: then it is live.
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('the counts of now', async () => (await count(page, 'failed')) === '4');
  await page.close();
  assert.deepEqual(errors, []);
});
