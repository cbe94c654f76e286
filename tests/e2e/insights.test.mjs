// The views that answer questions about a run, against the real service and two real agents
// (`lifeline up`'s local endpoint, and a second endpoint whose executor has a one-second
// walltime): the failures view groups two exceptions whose messages differ only in a number,
// another exception and a walltime failure into three causes with the right counts, and a cause
// lists its tasks; comparing the two endpoints shows both side by side; a submission's progress
// bar follows its tasks, and choosing it narrows the task list to them. Every new page passes
// axe-core in both themes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { launchBrowser, openPage, lifelineUp, startAgent, api, until, untilFinished, axeViolations, SCREENSHOTS } from './support.mjs';

const SOURCE = `import os
import time

def sample(n):
    raise ValueError(f"sample {n} is bad")

def missing(key):
    return {}[key]

def slow():
    time.sleep(60)

def gate(marker):
    while not os.path.exists(marker):
        time.sleep(0.05)
    return 1
`;

let browser;
let up;
let agent;
const ids = {};

const listed = (page) => page.locator('[data-testid="task-count"]').textContent();

/** Checks the page with axe-core in both themes, leaving it light. */
async function audit(page, what) {
  for (const theme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: theme });
    assert.deepEqual(await axeViolations(page), [], `${what} in the ${theme} theme`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
  ids.local = (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'local').endpoint_id;
  const short = await api(up.base, up.token, 'POST', '/v1/endpoints', { name: 'short' });
  ids.short = short.endpoint_id;
  agent = await startAgent(up, short.token, '[[executor]]\nlabel = "short"\nworkers_per_node = 1\nwalltime_secs = 1\n');
  await until('the short endpoint online', async () =>
    (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'short')?.online, 30000);
  const register = async (name) =>
    (await api(up.base, up.token, 'POST', '/v1/functions', { name, kind: 'python', source: SOURCE, entrypoint: name })).function_id;
  const fn = { sample: await register('sample'), missing: await register('missing'), slow: await register('slow'), gate: await register('gate') };
  const submit = async (endpoint, function_id, args) => api(up.base, up.token, 'POST', `/v1/endpoints/${endpoint}/submit`,
    { tasks: args.map((a) => ({ function_id, args: a })), max_retries: 0 });
  const failing = [
    ...(await submit(ids.local, fn.sample, [[1], [2]])).task_ids,
    ...(await submit(ids.local, fn.missing, [['x']])).task_ids,
    ...(await submit(ids.short, fn.slow, [[]])).task_ids,
  ];
  await untilFinished(up, failing, 'the failing tasks finished', 60000);
  ids.marker = join(up.home, 'gate-open');
  const gated = await submit(ids.local, fn.gate, [[ids.marker], [ids.marker], [ids.marker]]);
  ids.group = gated.task_group_id;
  ids.gated = gated.task_ids;
});

after(async () => {
  await browser?.close();
  await agent?.stop();
  await up?.stop();
});

test('failures are grouped by cause, with the right counts, and a cause lists its tasks', async () => {
  const { page, errors } = await openPage(browser, `${up.base}/?view=failures#token=${up.token}`);
  const groups = page.locator('[data-failure-group]');
  await until('three causes', async () => (await groups.count()) === 3);
  const causes = await groups.evaluateAll((els) => els.map((el) => ({
    reason: el.dataset.reason,
    count: el.dataset.count,
    signature: el.querySelector('.failure-signature').textContent,
  })));
  const find = (pattern) => causes.find((c) => pattern.test(c.signature));
  assert.equal(find(/ValueError/)?.count, '2', JSON.stringify(causes));
  assert.equal(find(/ValueError/).reason, 'exception');
  assert.equal(find(/KeyError/)?.count, '1', JSON.stringify(causes));
  assert.equal(causes.find((c) => c.reason === 'walltime')?.count, '1', JSON.stringify(causes));
  const value = groups.filter({ hasText: 'ValueError' });
  assert.match(await value.locator('.failure-facts').textContent(), /2 final failures/);
  await value.locator('summary').click();
  assert.match(await value.locator('pre').textContent(), /ValueError: sample \d is bad/);
  await page.screenshot({ path: join(SCREENSHOTS, 'failures.png'), fullPage: true });
  await audit(page, 'the failures view');
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(SCREENSHOTS, 'failures-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });

  // A cause lists its tasks: the two ValueErrors, whatever their numbers.
  await value.locator('.failure-signature').click();
  await until('the cause in the address', async () => page.url().includes('failure='));
  await until('its two tasks listed', async () => (await listed(page)) === '2 tasks');
  assert.match(await page.locator('.active-filter').textContent(), /failed: ValueError/);
  await page.close();
  assert.deepEqual(errors, []);
});

test('two endpoints side by side', async () => {
  const { page, errors } = await openPage(browser, `${up.base}/?view=compare&endpoint=${ids.local},${ids.short}#token=${up.token}`);
  const columns = page.locator('[data-compare-endpoint]');
  await until('both endpoints', async () => (await columns.count()) === 2);
  const local = page.locator(`[data-compare-endpoint="${ids.local}"]`);
  const short = page.locator(`[data-compare-endpoint="${ids.short}"]`);
  assert.equal(await local.locator('h3').textContent(), 'local');
  assert.equal(await short.locator('h3').textContent(), 'short');
  await until('the local counts', async () => (await local.locator('[data-state="failed"]').getAttribute('data-count')) === '3');
  assert.equal(await short.locator('[data-state="failed"]').getAttribute('data-count'), '1');
  // Stays per state, from the service's log: every task that ran left `running`.
  assert.notEqual(await short.locator('[data-dwell-state="running"] td').first().textContent(), '–');
  await page.screenshot({ path: join(SCREENSHOTS, 'compare.png'), fullPage: true });
  await audit(page, 'the comparison');

  // One endpoint is not a comparison.
  await page.locator('.compare-pick', { hasText: 'short' }).locator('input').uncheck();
  await page.locator('[data-testid="compare-hint"]').waitFor();
  await page.close();
  assert.deepEqual(errors, []);
});

test('a submission\'s progress bar follows its tasks, and choosing it narrows the list and the diagram', async () => {
  const { page, errors } = await openPage(browser, `${up.base}/?view=groups#token=${up.token}`);
  const row = page.locator(`[data-group="${ids.group}"]`);
  await row.waitFor({ timeout: 20000 });
  assert.equal(await row.getAttribute('data-size'), '3');
  assert.equal(await row.getAttribute('data-finished'), '0');
  await page.screenshot({ path: join(SCREENSHOTS, 'groups-running.png'), fullPage: true });
  await audit(page, 'the submissions');

  await writeFile(ids.marker, '');
  await until('the bar full', async () => (await row.getAttribute('data-finished')) === '3', 30000);
  assert.equal(await row.locator('.segment[data-state="success"]').getAttribute('data-count'), '3');
  assert.match(await row.locator('.progress').getAttribute('aria-label'), /^3 of 3 finished: 3 success$/);
  await page.screenshot({ path: join(SCREENSHOTS, 'groups.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(SCREENSHOTS, 'groups-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });

  await row.locator('button').click();
  await until('the group in the address', async () => page.url().includes(`group=${ids.group}`));
  await until('its tasks listed', async () => (await listed(page)) === '3 tasks');
  for (const id of ids.gated) assert.equal(await page.locator(`[data-task-id="${id}"]`).count(), 1);
  // The diagram counts the submission's tasks only: its 3 successes, none of the run's failures.
  const count = (state) => page.locator(`svg.diagram [data-state="${state}"]`).first().getAttribute('data-count');
  await until('the diagram narrowed to the submission', async () => (await count('success')) === '3' && (await count('failed')) === '0');
  await page.close();
  assert.deepEqual(errors, []);
});
