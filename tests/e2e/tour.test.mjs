// Every page as a person sees it, on a laptop (1440x900) and a phone (390x844), in the light
// and the dark theme: no horizontal scrolling, no accessibility violation axe-core can find, and
// a screenshot of each in test-output/screenshots/ (tour-PAGE-SIZE-THEME.png).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchBrowser, openPage, lifelineUp, api, until, axeViolations, overflow, SIZES, SCREENSHOTS, untilFinished } from './support.mjs';

const SOURCE = `import os

def ok(n):
    return n * 2

def boom(n):
    raise ValueError(f"bad input: {n}")

def flaky(marker):
    if not os.path.exists(marker):
        open(marker, 'w').close()
        os.kill(os.getpid(), 9)
    return 'survived'
`;

let browser;
let up;
const ids = {};

async function register(name) {
  return (await api(up.base, up.token, 'POST', '/v1/functions', { name, kind: 'python', source: SOURCE, entrypoint: name })).function_id;
}

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
  const local = (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'local').endpoint_id;
  const far = (await api(up.base, up.token, 'POST', '/v1/endpoints', { name: 'far-away' })).endpoint_id;
  const fn = { ok: await register('ok'), boom: await register('boom'), flaky: await register('flaky') };
  const submit = async (endpoint, function_id, args) =>
    (await api(up.base, up.token, 'POST', `/v1/endpoints/${endpoint}/submit`, { tasks: args.map((a) => ({ function_id, args: a })) })).task_ids;
  ids.ok = await submit(local, fn.ok, [[1], [2], [3], [4], [5]]);
  [ids.boom] = await submit(local, fn.boom, [[42]]);
  [ids.flaky] = await submit(local, fn.flaky, [[join(up.home, 'flaky-marker')]]);
  ids.waiting = await submit(far, fn.ok, [[6], [7]]);
  await api(up.base, up.token, 'POST', `/v1/tasks/${ids.waiting[1]}/cancel`);
  const all = [...ids.ok, ids.boom, ids.flaky];
  await untilFinished(up, all, 'the local tasks finished', 60000);
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

/** Checks what is on screen now and photographs it; returns the problems found. */
async function look(page, name) {
  const problems = [];
  const wide = await overflow(page);
  if (wide > 0) problems.push(`${name}: ${wide}px of horizontal scrolling`);
  for (const v of await axeViolations(page)) problems.push(`${name}: ${v}`);
  await page.screenshot({ path: join(SCREENSHOTS, `tour-${name}.png`), fullPage: true });
  return problems;
}

test('every page, on a laptop and a phone, light and dark: no sideways scrolling, no axe violation', async () => {
  const problems = [];
  for (const [size, viewport] of Object.entries(SIZES)) {
    for (const theme of ['light', 'dark']) {
      const { page, errors } = await openPage(browser, up.url);
      await page.setViewportSize(viewport);
      await page.emulateMedia({ colorScheme: theme });
      await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
      await until('the tasks listed', async () => (await page.locator('[data-task-id]').count()) >= 8);
      const at = `${size}-${theme}`;
      problems.push(...await look(page, `lifecycle-${at}`));

      await page.locator(`[data-task-id="${ids.boom}"]`).click();
      await page.locator(`[data-task-detail="${ids.boom}"] [data-status="failed"]`).waitFor();
      problems.push(...await look(page, `task-failed-${at}`));
      await page.keyboard.press('Escape');

      await page.locator(`[data-task-id="${ids.flaky}"]`).click();
      await page.locator(`[data-task-detail="${ids.flaky}"] [data-status="success"]`).waitFor();
      problems.push(...await look(page, `task-retried-${at}`));
      await page.keyboard.press('Escape');

      await page.locator('[data-page="endpoints"]').click();
      await page.locator('[data-endpoint-row]').first().waitFor();
      problems.push(...await look(page, `endpoints-${at}`));

      await page.locator('[data-page="overview"]').click();
      await page.locator('[data-total="success"]').waitFor();
      problems.push(...await look(page, `overview-${at}`));

      await page.locator('[data-page="failures"]').click();
      await page.locator('[data-failure-group]').first().waitFor();
      problems.push(...await look(page, `failures-${at}`));

      await page.locator('[data-page="groups"]').click();
      await page.locator('[data-group]').first().waitFor();
      problems.push(...await look(page, `groups-${at}`));

      await page.locator('[data-page="compare"]').click();
      await page.locator('[data-testid="compare-hint"]').waitFor();
      problems.push(...await look(page, `compare-${at}`));

      await page.locator('[data-testid="sign-out"]').click();
      await page.locator('form input#token').waitFor();
      problems.push(...await look(page, `sign-in-${at}`));
      await page.close();
      assert.deepEqual(errors, [], `${at}: console errors`);
    }
  }
  assert.deepEqual(problems, []);
});
