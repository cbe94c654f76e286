// Users in the dashboard, against the real service: the header names who is signed in, only
// admin gets the "mine / everyone" switch (kept in the URL, narrowing counts and list to admin's
// own tasks), signing out forgets the token, and a token revoked while its page is open returns
// that page to the sign-in form with a message saying why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchBrowser, openPage, lifelineUp, api, until, SCREENSHOTS } from './support.mjs';

let browser;
let up;
let ada;
let local;

const count = (page, state) =>
  page.locator(`svg.diagram [data-state="${state}"]`).getAttribute('data-count').then(Number);

/** Submits one shell task as `token` to the local endpoint and waits for its end. */
async function runOne(token, word) {
  const f = await api(up.base, token, 'POST', '/v1/functions', { name: `say-${word}`, kind: 'shell', command: `echo ${word}` });
  const { task_ids: [id] } = await api(up.base, token, 'POST', `/v1/endpoints/${local}/submit`,
    { tasks: [{ function_id: f.function_id }] });
  await until(`${word}'s task finished`, async () => !(await api(up.base, token, 'GET', `/v1/tasks/${id}`)).pending);
  return id;
}

before(async () => {
  browser = await launchBrowser();
  up = await lifelineUp();
  ada = await api(up.base, up.token, 'POST', '/v1/users', { name: 'ada' });
  assert.equal(ada.user, 'ada');
  local = (await api(up.base, up.token, 'GET', '/v1/endpoints')).find((e) => e.name === 'local').endpoint_id;
  // Ada may run tasks on admin's endpoint; admin, its owner, sees them.
  await api(up.base, up.token, 'POST', `/v1/endpoints/${local}/share`, { with: 'ada' });
});

after(async () => {
  await browser?.close();
  await up?.stop();
});

test('the header names who is signed in; only admin switches between mine and everyone', async () => {
  const adaTask = await runOne(ada.token, 'ada');
  const adminTask = await runOne(up.token, 'admin');

  const { page: adas, errors: adaErrors } = await openPage(browser, `${up.base}/#token=${ada.token}`);
  await adas.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  const who = adas.locator('[data-testid="user"]');
  assert.equal(await who.getAttribute('data-user'), 'ada');
  assert.equal(await who.getAttribute('data-admin'), 'false');
  assert.equal(await adas.locator('[data-testid="scope"]').count(), 0, 'no switch for a user who is not admin');
  await until('ada sees her task only', async () => (await adas.locator('[data-task-id]').count()) === 1);
  assert.equal(await adas.locator(`[data-task-id="${adaTask}"]`).count(), 1);
  assert.equal(await count(adas, 'success'), 1);
  await adas.screenshot({ path: join(SCREENSHOTS, 'signed-in-user.png') });
  await adas.close();
  assert.deepEqual(adaErrors, []);

  const { page, errors } = await openPage(browser, up.url);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  assert.equal(await page.locator('[data-testid="user"]').getAttribute('data-user'), 'admin');
  const scope = page.locator('[data-testid="scope"]');
  await scope.waitFor();
  assert.equal(await scope.locator('[data-scope="everyone"]').getAttribute('aria-pressed'), 'true');
  await until('admin sees everyone\'s tasks', async () => (await count(page, 'success')) === 2);
  assert.equal(await page.locator(`[data-task-id="${adaTask}"]`).count(), 1);

  await scope.locator('[data-scope="mine"]').click();
  await until('the switch is in the URL', async () => page.url().includes('mine=true'));
  await until('only admin\'s own tasks', async () => (await count(page, 'success')) === 1
    && (await page.locator('[data-task-id]').count()) === 1);
  assert.equal(await page.locator(`[data-task-id="${adminTask}"]`).count(), 1);
  assert.equal(await scope.locator('[data-scope="mine"]').getAttribute('aria-pressed'), 'true');
  await page.screenshot({ path: join(SCREENSHOTS, 'signed-in-admin-mine.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(SCREENSHOTS, 'signed-in-admin-mine-phone.png') });
  await page.setViewportSize({ width: 1440, height: 900 });

  // A reload keeps the switch; "everyone" widens the view again.
  await page.reload();
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await until('still only admin\'s', async () => (await count(page, 'success')) === 1);
  await page.locator('[data-scope="everyone"]').click();
  await until('everyone again', async () => (await count(page, 'success')) === 2);
  assert.ok(!page.url().includes('mine='), page.url());

  // Signing out forgets the token: a reload stays on the sign-in form.
  await page.locator('[data-testid="sign-out"]').click();
  await page.locator('form input#token').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('lifeline-token')), null);
  await page.reload();
  await page.locator('form input#token').waitFor({ timeout: 15000 });
  await page.close();
  assert.deepEqual(errors, []);
});

test('a token revoked while its page is open returns the page to sign-in, saying why', async () => {
  const { page } = await openPage(browser, `${up.base}/#token=${ada.token}`);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  assert.equal(await page.locator('[data-testid="user"]').getAttribute('data-user'), 'ada');

  const tokens = await api(up.base, up.token, 'GET', '/v1/tokens?user=ada');
  assert.equal(tokens.length, 1, JSON.stringify(tokens));
  await api(up.base, up.token, 'DELETE', `/v1/tokens/${tokens[0].id}`);

  await page.locator('form input#token').waitFor({ timeout: 30000 });
  const notice = await page.locator('[data-testid="notice"]').textContent();
  assert.match(notice, /revoked or has expired/);
  assert.equal(await page.locator('[data-testid="user"]').count(), 0);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('lifeline-token')), null);
  await page.screenshot({ path: join(SCREENSHOTS, 'signed-out-revoked.png') });
  await page.close();
});
