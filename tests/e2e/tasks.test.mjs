// The task list, as a user reads and drives it: failed rows say what the task raised, the
// life-cycle strip claims only the states a task must have passed, column headers stay apart,
// the count reads as words, rows sort by age, state and time in state (kept in the URL), and the
// keyboard works: a skip link reaches the list, arrows move a cursor without opening tasks,
// Enter opens, Home and End jump, Escape closes and gives focus back to the list; the diagram
// is one tab stop whose arrow keys move between states.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchBrowser, openPage, lifelineUp, api, until, SCREENSHOTS, untilFinished } from './support.mjs';

const SOURCE = `def ok(n):
    if n == 3:
        # Nested containers, empty ones among them, and a number no double holds.
        return {"big": 2 ** 70, "empty": [[], {}], "n": n}
    return n

def boom(n):
    raise ValueError(f"bad input: {n}")
`;
const ORDER = ['received', 'waiting-for-ep', 'dispatched-to-ep', 'waiting-for-nodes', 'waiting-for-launch',
  'running', 'success', 'failed', 'cancelled'];

let browser;
let up;
let page;
let errors;
const ids = {};

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
  const local = (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'local').endpoint_id;
  const far = (await api(up.base, up.token, 'POST', '/v1/endpoints', { name: 'far-away' })).endpoint_id;
  const register = async (name) =>
    (await api(up.base, up.token, 'POST', '/v1/functions', { name, kind: 'python', source: SOURCE, entrypoint: name })).function_id;
  const fn = { ok: await register('ok'), boom: await register('boom') };
  const submit = async (endpoint, function_id, args) =>
    (await api(up.base, up.token, 'POST', `/v1/endpoints/${endpoint}/submit`, { tasks: args.map((a) => ({ function_id, args: a })) })).task_ids;
  ids.ok = await submit(local, fn.ok, [[1], [2], [3]]);
  [ids.boom] = await submit(local, fn.boom, [[42]]);
  [ids.waiting, ids.cancelled] = await submit(far, fn.ok, [[6], [7]]);
  await api(up.base, up.token, 'POST', `/v1/tasks/${ids.cancelled}/cancel`);
  await untilFinished(up, [...ids.ok, ids.boom], 'the local tasks finished', 60000);
  ({ page, errors } = await openPage(browser, up.url));
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('every task listed', async () => (await page.locator('[data-task-id]').count()) === 6);
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

const strip = (id) => page.locator(`[data-task-id="${id}"] .strip .cell`).evaluateAll(
  (cells) => cells.map((c) => (c.classList.contains('current') ? 'now' : c.classList.contains('done') ? 'yes' : '-')));

test('rows say what failed tasks raised and claim no visit the model does not force', async () => {
  const failed = page.locator(`[data-task-id="${ids.boom}"] [data-exception-line]`);
  await until('the exception line', async () => /ValueError: bad input: 42/.test(await failed.textContent()));
  // Cancelled while waiting for its endpoint: only "received" is certain.
  assert.deepEqual(await strip(ids.cancelled), ['yes', '-', '-', '-', '-', '-', 'now']);
  // Succeeded: it may have gone straight to dispatched-to-ep, so waiting-for-ep is not claimed.
  assert.deepEqual(await strip(ids.ok[0]), ['yes', '-', 'yes', 'yes', 'yes', 'yes', 'now']);
  assert.deepEqual(await strip(ids.waiting), ['yes', 'now', '-', '-', '-', '-', '-']);

  // "Attempt" and "Age" stand apart.
  const gap = await page.locator('.task-head').evaluate((head) => {
    const textBox = (el) => { const r = document.createRange(); r.selectNodeContents(el); return r.getBoundingClientRect(); };
    return textBox(head.querySelector('[data-sort="age"] button')).left - textBox(head.querySelector('.c-att')).right;
  });
  assert.ok(gap >= 8, `only ${gap}px between "Attempt" and "Age"`);

  await page.locator('svg.diagram [data-state="failed"]').click();
  await until('one failed task', async () => (await page.locator('[data-testid="task-count"]').textContent()) === '1 task');
  await page.screenshot({ path: join(SCREENSHOTS, 'tasks-failed-filter.png') });
  await page.locator('button', { hasText: 'Clear filters' }).click();
  await until('all listed', async () => (await page.locator('[data-testid="task-count"]').textContent()) === '6 tasks');
});

test('rows sort by state, age and time in state, and the order is kept in the URL', async () => {
  const states = () => page.locator('[data-task-id]').evaluateAll((rows) => rows
    .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top)).map((r) => r.getAttribute('data-state')));
  const byState = (list) => [...list].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));
  await page.locator('[data-sort="state"] button').click();
  await until('sorted by state', async () => JSON.stringify(await states()) === JSON.stringify(byState(await states())));
  assert.ok(page.url().includes('sort=state'), page.url());
  assert.equal(await page.locator('[data-sort="state"]').getAttribute('aria-sort'), 'ascending');
  await page.locator('[data-sort="state"] button').click();
  await until('the other way', async () => JSON.stringify(await states()) === JSON.stringify(byState(await states()).reverse()));
  assert.ok(page.url().includes('sort=-state'), page.url());
  assert.equal(await page.locator('[data-sort="state"]').getAttribute('aria-sort'), 'descending');
  await page.reload();
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('still sorted after a reload', async () => (await states()).length === 6
    && JSON.stringify(await states()) === JSON.stringify(byState(await states()).reverse()));
  await page.locator('[data-sort="in-state"] button').click();
  assert.ok(page.url().includes('sort=-in-state'), 'longest in its state first');
  await page.screenshot({ path: join(SCREENSHOTS, 'tasks-sorted.png') });
  await page.locator('[data-sort="age"] button').click();
  assert.ok(!page.url().includes('sort='), `newest first again: ${page.url()}`);
  await page.locator('[data-sort="age"] button').click();
  assert.ok(page.url().includes('sort=-age'), `oldest first: ${page.url()}`);
  await page.locator('[data-sort="age"] button').click();
});

test('the keyboard reaches the list at once, moves without opening, opens with Enter', async () => {
  // From the top of a freshly loaded page.
  await page.reload();
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('every task listed', async () => (await page.locator('[data-task-id]').count()) === 6);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to the task list');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'task-grid');
  const active = () => page.evaluate(() => document.getElementById('task-grid').getAttribute('aria-activedescendant'));
  const rowIds = await page.locator('[data-task-id]').evaluateAll((rows) => rows
    .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top)).map((r) => r.id));
  assert.equal(await active(), rowIds[0], 'the cursor starts on the first row');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  assert.equal(await active(), rowIds[2]);
  assert.equal(await page.locator('[data-task-detail]').count(), 0, 'moving opens nothing');
  await page.keyboard.press('End');
  assert.equal(await active(), rowIds.at(-1));
  await page.keyboard.press('Home');
  assert.equal(await active(), rowIds[0]);
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  const opened = rowIds[1].replace('task-row-', '');
  await page.locator(`[data-task-detail="${opened}"]`).waitFor();
  assert.ok(page.url().includes(`task=${opened}`));
  await until('focus in the detail', () => page.evaluate(() => !!document.activeElement?.closest('.detail')));
  await page.keyboard.press('Escape');
  await until('closed', async () => (await page.locator('[data-task-detail]').count()) === 0);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'task-grid', 'focus is back on the list');

  // The diagram is a single tab stop; arrows move between its states.
  await page.locator('#diagram-state-received').focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'diagram-state-waiting-for-ep');
  const stops = await page.locator('svg.diagram [tabindex="0"]').count();
  assert.equal(stops, 1, 'one tab stop in the diagram');
  await page.keyboard.press('Enter');
  assert.ok(page.url().includes('state=waiting-for-ep'), page.url());
  await page.keyboard.press('Enter');
  assert.deepEqual(errors, []);
});

test('a result reads as laid-out JSON, every digit kept', async () => {
  await page.locator(`[data-task-id="${ids.ok[2]}"]`).click();
  const detail = page.locator(`[data-task-detail="${ids.ok[2]}"]`);
  await detail.locator('[data-status="success"]').waitFor();
  assert.equal(await detail.locator('pre.result').textContent(),
    '{\n  "big": 1180591620717411303424,\n  "empty": [\n    [],\n    {}\n  ],\n  "n": 3\n}');
  await page.keyboard.press('Escape');
});

test('the detail of a failed task: whole reasons, unwrapped names, a readable completion time, no "now"', async () => {
  await page.locator(`[data-task-id="${ids.boom}"]`).click();
  const detail = page.locator(`[data-task-detail="${ids.boom}"]`);
  await detail.locator('[data-status="failed"]').waitFor();
  assert.match(await detail.locator('[data-completed]').textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/);
  const steps = await detail.locator('tr[data-step]').evaluateAll((rows) => rows.map((r) => ({
    state: r.children[1].textContent,
    there: r.children[5].textContent,
    oneLine: [...r.children].every((c) => {
      const range = document.createRange();
      range.selectNodeContents(c);
      const lines = new Set([...range.getClientRects()].map((b) => Math.round(b.top)));
      return lines.size <= 1 && c.scrollWidth <= c.clientWidth + 1;
    }),
  })));
  assert.equal(steps.at(-1).state, 'failed');
  assert.equal(steps.at(-1).there, '(end)', 'a finished task\'s last state is where it ended');
  assert.ok(steps.every((s) => s.there !== 'now'));
  assert.ok(steps.every((s) => s.oneLine), `steps on one line each: ${JSON.stringify(steps)}`);
  const failedReason = await detail.locator(`tr[data-reason-of="${steps.length}"] .reason`).evaluate((td) => ({
    text: td.textContent, clipped: td.scrollWidth > td.clientWidth + 1,
  }));
  assert.equal(failedReason.text, 'ValueError: bad input: 42');
  assert.ok(!failedReason.clipped, 'the reason is not clipped');
  await page.screenshot({ path: join(SCREENSHOTS, 'task-detail-failed.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  const table = await detail.locator('.table-scroll').evaluate((t) => t.scrollWidth - t.clientWidth);
  assert.ok(table <= 0, `on a phone the steps fit the screen (${table}px over)`);
  const reasons = await detail.locator('td.reason').evaluateAll((tds) => tds.filter((td) => td.scrollWidth > td.clientWidth + 1).length);
  assert.equal(reasons, 0, 'no reason clipped on a phone');
  await detail.locator('table.transitions').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SCREENSHOTS, 'task-detail-failed-phone.png') });
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.keyboard.press('Escape');
});
