// What the connection indicator and the page say when the service goes away and comes back: the
// indicator goes offline and stays there (no flicker back to polling while the service is
// away), a banner says what is shown is old and since when, endpoint chips stop claiming to be
// online, nothing reads "Cannot reach the service ({})"; once the service is back everything
// is live again and no old notice lingers. A page opened against a dead service shows no
// counts at all rather than an empty system.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { serveDist, launchBrowser, openPage, lifelineUp, until, axeViolations, SIZES, SCREENSHOTS } from './support.mjs';

let browser;
let up;
let site;

before(async () => {
  browser = await launchBrowser();
  site = await serveDist();
  up = await lifelineUp();
});

after(async () => {
  await browser?.close();
  site?.server.close();
  await up?.stop();
});

/** Records every value the indicator takes, from now on, in `window.shown`. */
function recordIndicator(page) {
  return page.evaluate(() => {
    const el = document.querySelector('[data-connection]');
    window.shown = [el.getAttribute('data-connection')];
    new MutationObserver(() => {
      const now = document.querySelector('[data-connection]')?.getAttribute('data-connection');
      if (now && now !== window.shown.at(-1)) window.shown.push(now);
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-connection'] });
  });
}

test('the service going away and coming back', async () => {
  const { page, errors } = await openPage(browser, up.url);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  const chip = page.locator('.chip[data-endpoint] .dot').first();
  assert.match(await chip.getAttribute('class'), /online/);
  await recordIndicator(page);

  const bind = new URL(up.base).host;
  await up.stop();
  await page.locator('[data-connection="offline"]').waitFor({ timeout: 20000 });
  // Several polling rounds and stream attempts later, still offline and nothing else.
  await new Promise((r) => setTimeout(r, 9000));
  const away = await page.evaluate(() => window.shown);
  const firstOffline = away.indexOf('offline');
  assert.deepEqual(away.slice(firstOffline), ['offline'], `the indicator while away: ${away.join(' → ')}`);
  const banner = await page.locator('[data-testid="offline"]').textContent();
  assert.match(banner, /Cannot reach .*as of \d\d:\d\d:\d\d; trying again\./, banner);
  assert.match(await chip.getAttribute('class'), /unknown/, 'the chip no longer claims online');
  assert.equal(await page.locator('.diagram-scroll.stale').count(), 1, 'the diagram is marked old');
  const notices = await page.locator('.notice').allTextContents();
  assert.ok(notices.every((n) => !/\{\}|\(\{/.test(n)), `no raw error objects: ${notices}`);
  await page.screenshot({ path: join(SCREENSHOTS, 'offline.png') });
  assert.deepEqual(await axeViolations(page), [], 'the offline page is accessible');
  await page.emulateMedia({ colorScheme: 'dark' });
  assert.deepEqual(await axeViolations(page), [], 'in the dark theme too');
  await page.screenshot({ path: join(SCREENSHOTS, 'offline-dark.png') });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize(SIZES.phone);
  await page.screenshot({ path: join(SCREENSHOTS, 'offline-phone.png') });
  await page.setViewportSize(SIZES.desktop);

  up = await lifelineUp({ home: up.home, bind });
  await page.locator('[data-connection="live"]').waitFor({ timeout: 60000 });
  assert.equal(await page.locator('[data-testid="offline"]').count(), 0, 'the banner is gone');
  assert.equal(await page.locator('.notice').count(), 0, 'no notice lingers');
  await until('the chip online again', async () => /online/.test(await chip.getAttribute('class')));
  assert.equal(await page.locator('.stale').count(), 0);
  const unexpected = errors.filter((e) => !/Failed to load resource|ERR_CONNECTION_REFUSED|EventSource/.test(e));
  assert.deepEqual(unexpected, []);
  await page.close();
});

test('a page opened against a dead service shows no counts, not an empty system', async () => {
  const { page } = await openPage(browser, `${site.url}#token=whatever&service=${encodeURIComponent('http://127.0.0.1:9')}`);
  await page.locator('[data-connection="offline"]').waitFor({ timeout: 20000 });
  const banner = await page.locator('[data-testid="offline"]').textContent();
  assert.match(banner, /Cannot reach http:\/\/127\.0\.0\.1:9; trying again\./, banner);
  const shown = await page.locator('svg.diagram [data-state] .node-count').allTextContents();
  assert.ok(shown.length === 9 && shown.every((t) => t.trim() === '–'), `counts: ${shown}`);
  await page.screenshot({ path: join(SCREENSHOTS, 'offline-from-the-start.png') });
  await page.close();
});
