// Helpers for Lifeline's end-to-end tests: a static server for the built dashboard and a headless
// Chromium driven by playwright-core.
import { createServer } from 'node:http';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const SCREENSHOTS = join(ROOT, 'test-output', 'screenshots');

// Every directory the tests make under the shared temp directory is removed when the test process
// ends, passed or failed: a login node's /tmp is not ours to fill.
const scratch = [];
process.on('exit', () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
});

/** A fresh private directory under the temp directory, removed when the process exits. */
export async function scratchDir(prefix) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
};

/** Serves `dist/` on a free loopback port; returns the server and its base URL. */
export async function serveDist() {
  const dist = join(ROOT, 'dist');
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = join(dist, path === '/' ? 'index.html' : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

/**
 * Starts headless Debian Chromium with a fresh profile, and any further command-line `args`.
 * Console errors fail the page check.
 */
export async function launchBrowser({ args = [] } = {}) {
  const profile = await scratchDir('lifeline-chromium-');
  // Chromium's own temporary files (its singleton socket, scoped directories) go there too, so
  // that a browser killed with its test leaves nothing behind in the shared temp directory.
  const tmp = await scratchDir('lifeline-chromium-tmp-');
  await mkdir(SCREENSHOTS, { recursive: true });
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    env: { ...process.env, TMPDIR: tmp },
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...args],
  });
}

/** Opens `url` in a new page and collects the errors it logs. */
export async function openPage(context, url) {
  const page = await context.newPage();
  const errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  page.on('pageerror', (err) => errors.push(String(err)));
  await page.goto(url);
  return { page, errors };
}

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** The `lifeline` binary the tests run: `E2E_LIFELINE_BIN` (any `LIFELINE_` variable is a
 * setting the service checks), or the debug build in `target/`. */
export const LIFELINE = process.env.E2E_LIFELINE_BIN ?? join(ROOT, 'target', 'debug', 'lifeline');

/**
 * Runs `lifeline up` (the real service, a real local endpoint agent and the built dashboard) in
 * a fresh home directory. Resolves with its URL, token and a way to stop it.
 */
export async function lifelineUp({ home, bind = '127.0.0.1:0', env = {} } = {}) {
  home = home ?? await scratchDir('lifeline-e2e-');
  const child = spawn(LIFELINE, ['up', '--bind', bind, '--data-dir', join(home, 'data'), '--dashboard-dir', join(ROOT, 'dist')], {
    env: { ...process.env, HOME: home, LIFELINE_LOG: 'warn', LIFELINE_HEARTBEAT_PERIOD: '0.5', LIFELINE_HEARTBEAT_THRESHOLD: '30', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('lifeline up did not print its URL')), 30000);
    lines.on('line', (line) => {
      if (line.startsWith('Lifeline is up: ')) {
        clearTimeout(timer);
        resolve(line.slice('Lifeline is up: '.length));
      }
    });
    child.on('exit', (code) => reject(new Error(`lifeline up exited with ${code}`)));
  });
  const [base, token] = url.split('/#token=');
  const stop = async () => {
    if (child.exitCode !== null) return;
    const done = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGINT');
    await done;
  };
  return { url, base, token, home, stop, child };
}

/**
 * Starts `lifeline endpoint start` for a registered endpoint with the endpoint.toml text
 * `config`, in a directory of its own under the home of `up`. Resolves with the child and a way
 * to stop it.
 */
export async function startAgent(up, token, config) {
  const dir = await mkdtemp(join(up.home, 'agent-'));
  // The token goes in a file, as README tells users: a flag would show it in `ps`.
  await writeFile(join(dir, 'endpoint.token'), `${token}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'endpoint.toml'), config);
  const child = spawn(LIFELINE, ['endpoint', 'start', '--service', up.base, '--token-file', join(dir, 'endpoint.token'),
    '--dir', dir, '--config', join(dir, 'endpoint.toml')], {
    env: { ...process.env, LIFELINE_LOG: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGINT');
    await done;
  };
  return { child, dir, stop };
}

/** A JSON call to the service. */
export async function api(base, token, method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Polls `check` until it returns a truthy value. */
export async function until(what, check, timeout = 30000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until every task of `ids` is finished, asking the service for their status. */
export async function untilFinished(up, ids, what = 'the tasks finished', timeout = 30000) {
  return until(what, async () => {
    const docs = await api(up.base, up.token, 'POST', '/v1/tasks/batch_status', { task_ids: ids });
    return Object.values(docs.results).every((d) => d.pending === false);
  }, timeout);
}

/** The two screens every page is checked at: a laptop and a phone. */
export const SIZES = {
  desktop: { width: 1440, height: 900 },
  phone: { width: 390, height: 844 },
};

const AXE = join(ROOT, 'node_modules', 'axe-core', 'axe.min.js');

/**
 * Runs axe-core (the npm package, injected into the page) over the whole document. Returns its
 * violations, one line each: rule, impact, how many nodes, and the first few of them.
 */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.addScriptTag({ path: AXE });
  }
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations);
  return violations.map((v) => `${v.id} (${v.impact}) x${v.nodes.length}: ${v.help} — ${v.nodes.slice(0, 3)
    .map((n) => `${n.target.join(' ')}${n.failureSummary ? ` [${n.failureSummary.split('\n').slice(1).join(' ').trim()}]` : ''}`).join('; ')}`);
}

/** How many pixels the page is wider than its window (0 or less: no horizontal scrolling). */
export function overflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

/** The contrast ratio (WCAG) of two CSS colours given as `rgb(r, g, b)`. */
export function contrast(a, b) {
  const luminance = (css) => {
    const [r, g, bl] = css.match(/[\d.]+/g).slice(0, 3).map(Number).map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}
