// The overview's throughput chart after a reload: it starts from when the loaded tasks
// finished, not from what the page saw finish, has axes, and says so in words when nothing
// finished in the last five minutes. Its subheadings are smaller than its heading. The footer
// names the service's version and commit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchBrowser, openPage, lifelineUp, api, until, SCREENSHOTS, untilFinished } from './support.mjs';

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

test('the throughput chart shows the last five minutes from the first look', async () => {
  const { page, errors } = await openPage(browser, `${up.base}/?view=overview#token=${up.token}`);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  const summary = page.locator('[data-testid="throughput-summary"]');
  assert.equal(await summary.textContent(), 'No tasks finished in the last five minutes.');
  assert.equal(await page.locator('.plot .plot-empty').count(), 1);
  await page.screenshot({ path: join(SCREENSHOTS, 'overview-empty.png'), fullPage: true });

  const local = (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'local').endpoint_id;
  const f = await api(up.base, up.token, 'POST', '/v1/functions', { name: 'hi', kind: 'shell', command: 'true' });
  const bad = await api(up.base, up.token, 'POST', '/v1/functions', { name: 'no', kind: 'shell', command: 'exit 3' });
  const { task_ids: ids } = await api(up.base, up.token, 'POST', `/v1/endpoints/${local}/submit`,
    { tasks: [...Array.from({ length: 5 }, () => ({ function_id: f.function_id })), { function_id: bad.function_id }] });
  await untilFinished(up, ids, 'the tasks finished', 60000);

  // A reload: the page saw none of them finish.
  await page.reload();
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('the finished tasks counted', async () =>
    (await summary.textContent()) === '6 tasks finished in the last five minutes: 5 succeeded, 1 failed or were cancelled.');
  const bars = await page.locator('.plot rect.bar-ok').evaluateAll((rects) => rects.filter((r) => Number(r.getAttribute('height')) > 0).length);
  assert.ok(bars >= 1, 'bars are drawn');
  const labels = await page.locator('.plot .axis-label').allTextContents();
  for (const label of ['5 min ago', 'now', '0']) assert.ok(labels.includes(label), `axis label ${label}: ${labels}`);
  const sizes = await page.evaluate(() => ({
    h2: parseFloat(getComputedStyle(document.querySelector('.panel h2')).fontSize),
    h3: Math.max(...[...document.querySelectorAll('.panel h3')].map((h) => parseFloat(getComputedStyle(h).fontSize))),
  }));
  assert.ok(sizes.h3 < sizes.h2, `subheadings (${sizes.h3}px) smaller than the heading (${sizes.h2}px)`);
  await page.screenshot({ path: join(SCREENSHOTS, 'overview-after-reload.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(SCREENSHOTS, 'overview-after-reload-dark.png'), fullPage: true });
  await page.close();
  assert.deepEqual(errors, []);
});

test('the footer names the service\'s version and commit, as /healthz reports them', async () => {
  const health = await (await fetch(`${up.base}/healthz`)).json();
  assert.ok(health.version && health.commit, `the service names both: ${JSON.stringify(health)}`);
  const { page, errors } = await openPage(browser, up.url);
  const footer = page.locator('footer[data-version]');
  await footer.waitFor({ timeout: 20000 });
  assert.equal(await footer.getAttribute('data-version'), health.version);
  assert.equal(await footer.getAttribute('data-commit'), health.commit);
  assert.equal(await footer.textContent(), `Lifeline ${health.version} · commit ${health.commit.slice(0, 12)}`);
  await page.close();
  assert.deepEqual(errors, []);
});
