// Dashboard benchmark (not a test; run on demand by scripts/bench): the release build of the
// dashboard in headless Chromium against the real service (release binary) with N tasks stored,
// then transitions streamed at a steady rate through the endpoint protocol: the benchmark is the
// endpoint (a WebSocket client with the endpoint's token), takes the tasks the service dispatches
// and reports each through waiting-for-nodes, waiting-for-launch, running and success, as an
// agent would. Prints initial load time, how long the list takes
// to show its last row (the oldest task), to filter by a state and to show the filtered list's
// last row, frame time p95, event-to-screen latency p95, page memory (JS heap after a garbage
// collection, plus the wasm's linear memory) at the start, the peak and the end of the stream,
// and the gzipped size of the wasm and JavaScript.
//
//   node tests/e2e/bench-dashboard.mjs [--tasks 100000] [--rate 2000] [--seconds 60]
//
// E2E_LIFELINE_BIN names another `lifeline` binary than target/release/lifeline.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import WebSocket from 'ws';
import { ROOT, launchBrowser, api, until } from './support.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const TASKS = arg('tasks', 100000);
const RATE = arg('rate', 2000);
const SECONDS = arg('seconds', 60);


/// The benchmark as an endpoint: its WebSocket to the service, the tasks it was sent and not yet
/// reported, and reports acknowledged by batch number.
async function connectEndpoint(base, token) {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/connect`, { headers: { authorization: `Bearer ${token}` } });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const held = [];
  const acks = new Map();
  let welcomed;
  const welcome = new Promise((resolve) => { welcomed = resolve; });
  ws.on('message', (data) => {
    const message = JSON.parse(data.toString());
    if (message.welcome) welcomed();
    if (message.tasks) held.push(...message.tasks.tasks.map((t) => [t.task_id, t.attempt]));
    if (message.ack) { acks.get(message.ack.batch)?.(message.ack.rejected); acks.delete(message.ack.batch); }
  });
  ws.send(JSON.stringify({ hello: { tasks: [] } }));
  await welcome;
  // Heartbeats keep the endpoint online (a silent one is declared lost).
  const beat = () => ws.send(JSON.stringify({ heartbeat: { report: { at: Date.now() / 1000, executors: [] } } }));
  beat();
  const heartbeats = setInterval(beat, 1000);
  let batch = 0;
  return {
    take: () => held.splice(0),
    report: (tasks) => {
      const at = Date.now() / 1000;
      const transitions = tasks.flatMap(([task_id, attempt]) => [
        ['waiting-for-nodes', 'endpoint'], ['waiting-for-launch', 'manager'], ['running', 'worker'], ['success', 'worker'],
      ].map(([state, actor]) => ({ task_id, state, actor, attempt, at, ...(state === 'success' ? { result: null } : {}) })));
      batch += 1;
      const answered = new Promise((resolve, reject) => acks.set(batch, (rejected) => (rejected.length ? reject(new Error(JSON.stringify(rejected[0]))) : resolve())));
      ws.send(JSON.stringify({ report: { batch, transitions } }));
      return answered;
    },
    close: () => { clearInterval(heartbeats); ws.close(); },
  };
}

const pct = (values, q) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(s.length * q) - 1)] : NaN;
};
const figure = (name, value, unit) => console.log(`metric: ${name} = ${typeof value === 'number' ? value.toFixed(1) : value} ${unit}`);

const dir = await mkdtemp(join(tmpdir(), 'lifeline-bench-'));
const binary = process.env.E2E_LIFELINE_BIN ?? join(ROOT, 'target/release/lifeline');
const serve = spawn(binary, ['serve', '--bind', '127.0.0.1:0', '--data-dir', join(dir, 'data'), '--dashboard-dir', join(ROOT, 'dist')], {
  env: { ...process.env, LIFELINE_LOG: 'warn', LIFELINE_MAX_PAYLOAD_BYTES: '67108864' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const base = await new Promise((resolve) => {
  createInterface({ input: serve.stdout }).on('line', (line) => {
    const m = line.match(/^Lifeline is listening on (http:\/\/[^/]+)/);
    if (m) resolve(m[1]);
  });
});
const token = (await readFile(join(dir, 'data/token'), 'utf8')).trim();
const call = (method, path, body) => api(base, token, method, path, body);

try {
  // The stored tasks stay unfinished and the stream adds its own: more than a user's default
  // quota of unfinished tasks when a million are stored.
  await call('PATCH', '/v1/users/admin', { max_queued: TASKS + 10000000 });
  const endpoint = (await call('POST', '/v1/endpoints', { name: 'bench' })).endpoint_id;
  const fn = (await call('POST', '/v1/functions', { name: 'noop', kind: 'shell', command: 'true' })).function_id;
  const waiting = [];
  for (let left = TASKS; left > 0; left -= 10000) {
    const tasks = Array.from({ length: Math.min(left, 10000) }, () => ({ function_id: fn }));
    waiting.push(...(await call('POST', `/v1/endpoints/${endpoint}/submit`, { tasks })).task_ids);
  }
  console.log(`Dashboard benchmark: ${TASKS} tasks stored, ${RATE} transitions/s for ${SECONDS} s`);

  // Garbage collection on demand and unrounded heap sizes, for steady memory figures.
  const context = await launchBrowser({ args: ['--js-flags=--expose-gc', '--enable-precise-memory-info'] });
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__frames = [];
    window.__screen = [];
    addEventListener('TrunkApplicationStarted', (e) => { window.__wasm = e.detail.wasm; });
    const loop = (t) => { window.__frames.push(t); requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
    // When the success count changes on screen, note the wall clock.
    new MutationObserver(() => {
      const node = document.querySelector('svg.diagram [data-state="success"]');
      if (node) window.__screen.push([Date.now(), Number(node.getAttribute('data-count'))]);
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-count'] });
  });
  const started = Date.now();
  await page.goto(`${base}/#token=${token}`);
  await page.locator(`.task-count`, { hasText: `${TASKS} tasks` }).waitFor({ timeout: 120000 });
  await page.locator('[data-connection="live"]').waitFor({ timeout: 60000 });
  figure(`dashboard initial load (${TASKS} tasks stored)`, (Date.now() - started) / 1000, 's');

  // The list scrolled to its end shows the oldest task; filtered by a state, the same.
  const grid = page.locator('#task-grid');
  const toEnd = async () => {
    const begun = Date.now();
    await grid.evaluate((g) => { g.scrollTop = g.scrollHeight; });
    await page.locator(`[data-task-id="${waiting[0]}"]`).waitFor({ timeout: 60000 });
    return Date.now() - begun;
  };
  const toTop = async () => {
    await grid.evaluate((g) => { g.scrollTop = 0; });
    await page.locator(`[data-task-id="${waiting[0]}"]`).waitFor({ state: 'detached', timeout: 60000 });
  };
  figure('list scrolled to its last row', await toEnd(), 'ms');
  await toTop();
  const filtering = Date.now();
  await page.locator('select[aria-label="State"]').selectOption('waiting-for-ep');
  await page.locator('.task-count', { hasText: `${TASKS} tasks` }).waitFor({ timeout: 60000 });
  await page.locator('.task-row[data-state="waiting-for-ep"]').first().waitFor({ timeout: 60000 });
  figure('list filtered by a state', Date.now() - filtering, 'ms');
  figure('filtered list scrolled to its last row', await toEnd(), 'ms');
  await toTop();
  await page.locator('button', { hasText: 'Clear filters' }).click();

  const memory = async () => page.evaluate(() => {
    window.gc?.();
    return {
      js: performance.memory ? performance.memory.usedJSHeapSize : 0,
      wasm: window.__wasm ? window.__wasm.memory.buffer.byteLength : 0,
    };
  });
  const mib = (m) => (m.js + m.wasm) / 1048576;
  const before = await memory();
  let peak = mib(before);

  // Stream: the benchmark is the endpoint of a second one, `live`. Each tick submits tasks to it
  // and reports the tasks it was sent: received and dispatched-to-ep by the service, then four
  // transitions reported over the endpoint protocol, six in all per task.
  const live = await call('POST', '/v1/endpoints', { name: 'live' });
  const agent = await connectEndpoint(base, live.token);
  const done = [];
  let succeeded = Number(await page.locator('svg.diagram [data-state="success"]').getAttribute('data-count'));
  const firstCount = succeeded;
  await page.evaluate(() => { window.__frames = []; window.__screen = []; });
  const tickMs = 100;
  const perTick = Math.max(1, Math.round(RATE * tickMs / 1000 / 6));
  const streamStart = Date.now();
  let pending = [];
  // A request that fails before its batch is awaited must not end the process unhandled (which
  // would skip the clean-up below); awaiting the batch still throws its error.
  const later = (promise) => { promise.catch(() => {}); return promise; };
  while (Date.now() - streamStart < SECONDS * 1000) {
    const tickStart = Date.now();
    pending.push(later(call('POST', `/v1/endpoints/${live.endpoint_id}/submit`, { tasks: Array.from({ length: perTick }, () => ({ function_id: fn })) })));
    const sent = agent.take();
    if (sent.length > 0) pending.push(later(agent.report(sent).then(() => { const now = Date.now(); for (let k = 0; k < sent.length; k++) done.push(now); })));
    if (pending.length > 200) { await Promise.all(pending); pending = []; }
    if (Math.floor((tickStart - streamStart) / 10000) !== Math.floor((Date.now() - streamStart) / 10000)) {
      peak = Math.max(peak, mib(await memory()));
    }
    const rest = tickMs - (Date.now() - tickStart);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  }
  await Promise.all(pending);
  const last = agent.take();
  if (last.length > 0) { await agent.report(last); const now = Date.now(); for (let k = 0; k < last.length; k++) done.push(now); }
  const achieved = (done.length * 6) / ((Date.now() - streamStart) / 1000);
  agent.close();
  const target = firstCount + done.length;
  await until('the screen caught up', async () => Number(await page.locator('svg.diagram [data-state="success"]').getAttribute('data-count')) >= target, 60000);

  const frames = await page.evaluate(() => window.__frames);
  const deltas = frames.slice(1).map((t, i) => t - frames[i]);
  const screen = await page.evaluate(() => window.__screen);
  done.sort((a, b) => a - b);
  const latencies = [];
  let j = 0;
  for (let k = 0; k < done.length; k++) {
    while (j < screen.length && screen[j][1] < firstCount + k + 1) j++;
    if (j < screen.length) latencies.push(screen[j][0] - done[k]);
  }
  const after = await memory();
  figure('stream rate achieved', achieved, 'transitions/s');
  figure('frame time p95', pct(deltas, 0.95), 'ms');
  figure('event-to-screen p95', pct(latencies, 0.95), 'ms');
  figure('memory at stream start (JS heap + wasm)', mib(before), 'MiB');
  figure(`memory peak during ${SECONDS} s of stream (JS heap + wasm)`, Math.max(peak, mib(after)), 'MiB');
  figure(`memory after ${SECONDS} s of stream (JS heap + wasm)`, mib(after), 'MiB');
  figure(`JS heap after ${SECONDS} s of stream`, after.js / 1048576, 'MiB');
  figure(`wasm memory after ${SECONDS} s of stream`, after.wasm / 1048576, 'MiB');
  let gz = 0;
  for (const f of await readdir(join(ROOT, 'dist'))) {
    if (f.endsWith('.wasm') || f.endsWith('.js')) gz += gzipSync(await readFile(join(ROOT, 'dist', f)), { level: 9 }).length;
  }
  figure('dashboard wasm + JS gzipped', gz / 1024, 'KiB');
  await context.close();
} finally {
  if (serve.exitCode === null && serve.signalCode === null) {
    await new Promise((resolve) => { serve.once('exit', resolve); serve.kill('SIGINT'); });
  }
  await rm(dir, { recursive: true, force: true });
}
