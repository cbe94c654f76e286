// The dashboard on a phone (390x844) beside a laptop (1440x900): no sideways scrolling of the
// page, a diagram whose labels stay legible and whose states stay big enough to tap (it scrolls
// sideways in its panel instead of shrinking), every state's count at a glance, two-line task
// rows, and a task's detail that opens over the list, where the user is looking, with focus in
// it; closing it returns focus to the list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchBrowser, openPage, lifelineUp, api, until, overflow, SIZES, SCREENSHOTS, untilFinished } from './support.mjs';

let browser;
let up;
let ids;

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
  const local = (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'local').endpoint_id;
  const f = await api(up.base, up.token, 'POST', '/v1/functions', { name: 'hello', kind: 'shell', command: 'echo hello' });
  ({ task_ids: ids } = await api(up.base, up.token, 'POST', `/v1/endpoints/${local}/submit`,
    { tasks: Array.from({ length: 30 }, () => ({ function_id: f.function_id })) }));
  await untilFinished(up, ids, 'the tasks finished', 60000);
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

/** The diagram's label size and state size as drawn on screen, in CSS pixels. */
function diagramScale(page) {
  return page.evaluate(() => {
    const svg = document.querySelector('svg.diagram');
    const scale = svg.getScreenCTM().a;
    const label = document.querySelector('svg.diagram .node-name');
    const node = document.querySelector('svg.diagram [data-state="running"] rect').getBoundingClientRect();
    const scroller = document.querySelector('.diagram-scroll');
    return {
      text: parseFloat(getComputedStyle(label).fontSize) * scale,
      nodeHeight: node.height,
      nodeWidth: node.width,
      scrolls: scroller.scrollWidth > scroller.clientWidth,
    };
  });
}

test('on a phone the page never scrolls sideways and the diagram stays legible', async () => {
  const { page, errors } = await openPage(browser, up.url);
  await page.setViewportSize(SIZES.phone);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('the tasks listed', async () => (await page.locator('[data-task-id]').count()) > 5);
  assert.ok(await overflow(page) <= 0, `the page is ${await overflow(page)}px too wide`);
  const drawn = await diagramScale(page);
  assert.ok(drawn.text >= 11, `labels are ${drawn.text}px`);
  assert.ok(drawn.nodeHeight >= 44 && drawn.nodeWidth >= 44, `states are ${drawn.nodeWidth}x${drawn.nodeHeight}px`);
  assert.ok(drawn.scrolls, 'the diagram scrolls sideways in its panel');
  assert.ok(await page.locator('.scroll-hint').isVisible(), 'and says so');

  // Every state's count, readable and tappable without scrolling the diagram.
  const counts = page.locator('.state-counts');
  assert.ok(await counts.isVisible());
  assert.equal(await counts.locator('[data-count-state="success"] .count').textContent(), '30');
  const box = await counts.locator('[data-count-state="success"]').boundingBox();
  assert.ok(box.height >= 44, `count buttons are ${box.height}px tall`);

  // Rows take two lines and keep every cell inside the screen.
  const row = page.locator(`[data-task-id="${ids[ids.length - 6]}"]`);
  const cells = await row.evaluate((r) => [...r.children].filter((c) => getComputedStyle(c).display !== 'none')
    .map((c) => c.getBoundingClientRect()).map((b) => [b.left, b.right]));
  for (const [left, right] of cells) assert.ok(left >= 0 && right <= 390, `a cell at ${left}..${right}`);
  await page.screenshot({ path: join(SCREENSHOTS, 'phone-lifecycle.png'), fullPage: true });

  // Tapping a row low in the page opens the detail on screen, with focus in it.
  await row.scrollIntoViewIfNeeded();
  await row.click();
  const detail = page.locator(`[data-task-detail="${ids[ids.length - 6]}"]`);
  await detail.locator('[data-status="success"]').waitFor();
  const sheet = await detail.boundingBox();
  assert.ok(sheet.y >= 0 && sheet.y < SIZES.phone.height / 2, `the detail starts at ${sheet.y}px`);
  assert.ok(sheet.y + sheet.height <= SIZES.phone.height + 1, 'and ends on screen');
  await until('focus in the detail', () => page.evaluate(() => !!document.activeElement?.closest('.detail')));
  // The diagram, scrolled sideways, shows where the task ended.
  await until('the diagram scrolled to the task\'s last state', () => page.evaluate(() => {
    const scroller = document.querySelector('.diagram-scroll').getBoundingClientRect();
    const node = document.querySelector('svg.diagram [data-state="success"] rect').getBoundingClientRect();
    return node.left >= scroller.left && node.right <= scroller.right;
  }));
  assert.ok(await overflow(page) <= 0, 'the open detail does not widen the page');
  await page.screenshot({ path: join(SCREENSHOTS, 'phone-task-detail.png') });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(SCREENSHOTS, 'phone-task-detail-dark.png') });
  await page.emulateMedia({ colorScheme: 'light' });
  const close = detail.locator('button.close');
  const closeBox = await close.boundingBox();
  assert.ok(closeBox.width >= 44 && closeBox.height >= 44, 'the close button is big enough to tap');
  await close.click();
  await until('the detail closed', async () => (await page.locator('[data-task-detail]').count()) === 0);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'task-grid', 'focus back on the list');
  await page.close();
  assert.deepEqual(errors, []);
});

test('on a laptop the diagram fits its panel and the detail opens beside the list', async () => {
  const { page, errors } = await openPage(browser, up.url);
  await page.setViewportSize(SIZES.desktop);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('the tasks listed', async () => (await page.locator('[data-task-id]').count()) > 5);
  const drawn = await diagramScale(page);
  assert.ok(!drawn.scrolls, 'no sideways scrolling of the diagram');
  assert.ok(drawn.text >= 11, `labels are ${drawn.text}px`);
  assert.ok(!(await page.locator('.state-counts').isVisible()), 'the diagram shows the counts');
  await page.locator(`[data-task-id="${ids[ids.length - 1]}"]`).click();
  const detail = page.locator(`[data-task-detail="${ids[ids.length - 1]}"]`);
  await detail.locator('[data-status="success"]').waitFor();
  const list = await page.locator('.tasks-panel').boundingBox();
  const beside = await detail.boundingBox();
  assert.ok(beside.x >= list.x + list.width, 'the detail is to the right of the list');
  assert.ok(Math.abs(beside.y - list.y) < 5, 'at the same height');
  await page.close();
  assert.deepEqual(errors, []);
});
