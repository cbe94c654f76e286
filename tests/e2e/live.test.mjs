// The dashboard against the real service and a real endpoint agent running real tasks, in
// headless Chromium: tasks appear and move, filters change counts and list, a selected task's
// path is drawn (retry loop included), and a dropped service connection loses no event.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchBrowser, openPage, lifelineUp, api, until, contrast, SCREENSHOTS, untilFinished } from './support.mjs';

let browser;
let up;
let page;
let errors;
let fns;

const SOURCE = `import os, time

def nap(seconds):
    time.sleep(seconds)
    return seconds

def flaky(marker):
    if not os.path.exists(marker):
        open(marker, 'w').close()
        os.kill(os.getpid(), 9)
    return 'survived'
`;

async function register(name) {
  const f = await api(up.base, up.token, 'POST', '/v1/functions', { name, kind: 'python', source: SOURCE, entrypoint: name });
  return f.function_id;
}

async function submit(endpoint, functionId, calls) {
  const tasks = calls.map((args) => ({ function_id: functionId, args }));
  return (await api(up.base, up.token, 'POST', `/v1/endpoints/${endpoint}/submit`, { tasks })).task_ids;
}

const count = (state) => page.locator(`svg.diagram [data-state="${state}"]`).getAttribute('data-count').then(Number);

async function endpointId(name) {
  const list = await api(up.base, up.token, 'GET', '/v1/endpoints');
  return list.find((e) => e.name === name).endpoint_id;
}

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
  fns = { nap: await register('nap'), flaky: await register('flaky') };
  ({ page, errors } = await openPage(browser, up.url));
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

test('tasks appear and move through the diagram', async () => {
  const local = await endpointId('local');
  const ids = await submit(local, fns.nap, [[1.5], [1.5]]);
  await until('a task running', async () => (await count('running')) >= 1);
  // Live rates: a flowing edge is drawn wider, its rate beside it (not over its middle) in
  // legible type; a busy state's count has weight, an empty one none.
  const flowing = await page.locator('svg.diagram .edge-group.flowing').evaluateAll((groups) => groups.map((g) => {
    const path = g.querySelector('path.edge');
    const from = g.getAttribute('data-from');
    const to = g.getAttribute('data-to');
    const label = document.querySelector(`svg.diagram .flow[data-flow-from="${from}"][data-flow-to="${to}"]`);
    const mid = path.getPointAtLength(path.getTotalLength() / 2);
    const box = label?.getBBox();
    return {
      edge: `${from}>${to}`,
      width: parseFloat(getComputedStyle(path).strokeWidth),
      size: label ? parseFloat(getComputedStyle(label).fontSize) : 0,
      overMiddle: !!box && mid.x >= box.x && mid.x <= box.x + box.width && mid.y >= box.y && mid.y <= box.y + box.height,
    };
  }));
  assert.ok(flowing.length >= 1, 'edges flow while tasks move');
  for (const f of flowing) {
    assert.ok(f.width >= 3, `${f.edge} is ${f.width} wide while flowing`);
    assert.ok(f.size >= 11, `${f.edge}'s rate is ${f.size}px`);
    assert.ok(!f.overMiddle, `${f.edge}'s rate is drawn over the arrow`);
  }
  const bar = (state) => page.locator(`svg.diagram [data-state="${state}"] .count-bar`).getAttribute('width').then(Number);
  assert.ok((await bar('running')) > 0, 'a busy state has a count bar');
  assert.equal(await bar('failed'), 0, 'an empty state has none');
  await page.locator(`[data-task-id="${ids[0]}"]`).waitFor();
  await page.screenshot({ path: join(SCREENSHOTS, 'lifecycle-running.png'), fullPage: true });
  await until('both succeeded', async () => (await count('success')) >= 2);
  const stats = await api(up.base, up.token, 'GET', '/v1/stats');
  for (const [state, n] of Object.entries(stats.tasks)) {
    assert.equal(await count(state), n, `${state} matches the service`);
  }
  assert.equal(await page.locator(`[data-task-id="${ids[1]}"] .state-label`).textContent(), 'Success');
  // The address bar carries no token once it has been read.
  assert.ok(!page.url().includes('token='), page.url());
});

test('filtering by endpoint changes the counts and the list', async () => {
  const far = await api(up.base, up.token, 'POST', '/v1/endpoints', { name: 'far-away' });
  const waiting = await submit(far.endpoint_id, fns.nap, [[0], [0], [0]]);
  await until('the new endpoint listed', async () => (await page.locator(`[data-endpoint="${far.endpoint_id}"]`).count()) === 1);
  await until('waiting tasks counted', async () => (await count('waiting-for-ep')) === 3);
  await page.locator(`[data-endpoint="${far.endpoint_id}"]`).click();
  await until('only far-away counted', async () => (await count('success')) === 0 && (await count('waiting-for-ep')) === 3);
  await until('only far-away listed', async () => (await page.locator('[data-task-id]').count()) === 3);
  for (const id of waiting) assert.equal(await page.locator(`[data-task-id="${id}"]`).count(), 1);
  assert.ok(page.url().includes(`endpoint=${far.endpoint_id}`), 'the filter is in the URL');
  // A reload keeps the view.
  await page.reload();
  await until('filter kept after reload', async () => (await page.locator('[data-task-id]').count()) === 3);
  // Clicking a state filters the list to it.
  await page.locator('svg.diagram [data-state="waiting-for-ep"]').click();
  assert.ok(page.url().includes('state=waiting-for-ep'));
  await page.screenshot({ path: join(SCREENSHOTS, 'lifecycle-filtered.png'), fullPage: true });
  await page.locator('.chip.clear').click();
  await page.locator('button', { hasText: 'Clear filters' }).click();
  await until('all endpoints counted again', async () => (await count('success')) >= 2);
});

test('a killed worker shows the retry loop on attempt 2', async () => {
  const local = await endpointId('local');
  const marker = join(up.home, `marker-${Date.now()}`);
  const [id] = await submit(local, fns.flaky, [[marker]]);
  await until('flaky done', async () => (await api(up.base, up.token, 'GET', `/v1/tasks/${id}`)).pending === false);
  await page.locator(`[data-task-id="${id}"]`).click();
  assert.ok(page.url().includes(`task=${id}`), 'the selection is in the URL');
  const detail = page.locator(`[data-task-detail="${id}"]`);
  await detail.locator('[data-status="success"]').waitFor();
  await until('the path drawn', async () => (await page.locator('svg.diagram .edge-group.taken[data-from="running"][data-to="waiting-for-nodes"]').count()) === 1);
  assert.equal(await page.locator('svg.diagram [data-state="running"].visited').count(), 1);
  // The path keeps each edge's kind: the taken retry is still dashed in the retry colour, the
  // taken forward edges are not; what the task did not touch is dimmed.
  const look = (from, to) => page.locator(`svg.diagram .edge-group[data-from="${from}"][data-to="${to}"]`).evaluate((g) => {
    const edge = getComputedStyle(g.querySelector('path.edge'));
    return { stroke: edge.stroke, dashes: edge.strokeDasharray, opacity: Number(getComputedStyle(g).opacity), taken: g.classList.contains('taken') };
  });
  const retry = await look('running', 'waiting-for-nodes');
  const forward = await look('waiting-for-launch', 'running');
  const untouched = await look('dispatched-to-ep', 'failed');
  assert.ok(retry.taken && forward.taken && !untouched.taken);
  assert.notEqual(retry.dashes, 'none', 'the retry stays dashed');
  assert.equal(forward.dashes, 'none', 'a forward edge stays solid');
  assert.notEqual(retry.stroke, forward.stroke, 'each keeps its colour');
  assert.equal(retry.opacity, 1);
  assert.ok(untouched.opacity <= 0.5, `untouched edges are dimmed (${untouched.opacity})`);
  // Step numbers are legible: at least 12 px and 4.5:1 against their badge.
  const badge = await page.locator('svg.diagram [data-steps-for="waiting-for-nodes"]').evaluate((g) => ({
    text: g.querySelector('text').textContent,
    size: parseFloat(getComputedStyle(g.querySelector('text')).fontSize),
    fg: getComputedStyle(g.querySelector('text')).fill,
    bg: getComputedStyle(g.querySelector('rect')).fill,
  }));
  assert.match(badge.text, /^\d+ · \d+$/, 'both visits of waiting-for-nodes are numbered');
  assert.ok(badge.size >= 12, `${badge.size}px`);
  assert.ok(contrast(badge.fg, badge.bg) >= 4.5, `step contrast ${contrast(badge.fg, badge.bg)}`);
  const attempts = await detail.locator('table.transitions tbody tr td:nth-child(4)').allTextContents();
  assert.ok(attempts.includes('2'), `attempt 2 listed: ${attempts}`);
  assert.match(await detail.textContent(), /worker lost/);
  await page.screenshot({ path: join(SCREENSHOTS, 'task-retried.png'), fullPage: true });
  await page.keyboard.press('Escape');
  await until('selection cleared', async () => (await page.locator('[data-task-detail]').count()) === 0);
});

test('the endpoints and overview pages', async () => {
  await page.locator('[data-page="endpoints"]').click();
  await page.locator('[data-endpoint-row]').first().waitFor();
  assert.ok((await page.locator('[data-executor="default"]').count()) >= 1, 'the local executor is reported');
  await page.screenshot({ path: join(SCREENSHOTS, 'endpoints.png'), fullPage: true });
  await page.locator('[data-page="overview"]').click();
  await page.locator('[data-total="success"]').waitFor();
  await page.screenshot({ path: join(SCREENSHOTS, 'overview.png'), fullPage: true });
  await page.locator('[data-page="lifecycle"]').click();
});

test('dropping and restoring the service connection loses no event', async () => {
  const local = await endpointId('local');
  const before = await api(up.base, up.token, 'GET', '/v1/stats');
  // Stop the whole system and start it again on the same address and store.
  const bind = new URL(up.base).host;
  await up.stop();
  await until('the dashboard notices', async () => (await page.locator('[data-connection="live"]').count()) === 0);
  up = await lifelineUp({ home: up.home, bind });
  await until('live again', async () => (await page.locator('[data-connection="live"]').count()) === 1, 60000);
  const ids = await submit(local, fns.nap, [[0.2], [0.2], [0.2], [0.2]]);
  await untilFinished(up, ids, 'new tasks finished');
  const stats = await api(up.base, up.token, 'GET', '/v1/stats');
  assert.ok(stats.seq > before.seq);
  await until('every count matches the service', async () => {
    for (const state of ['received', 'waiting-for-ep', 'running', 'success', 'failed', 'cancelled']) {
      if ((await count(state)) !== (stats.tasks[state] ?? 0)) return false;
    }
    return true;
  });
  for (const id of ids) assert.equal(await page.locator(`[data-task-id="${id}"]`).count(), 1);
  assert.equal(await page.locator('[data-warning-seq]').count(), 0, 'no refused transition');
  const unexpected = errors.filter((e) => !/Failed to load resource|ERR_CONNECTION_REFUSED|EventSource/.test(e));
  assert.deepEqual(unexpected, []);
});
