// The endpoints page with an endpoint whose nodes come from a real Slurm (the single-node cluster
// scripts/slurm starts): a task submitted to it makes the agent ask Slurm for a block, which the
// page shows pending (or already running), then running with the task on it; the task succeeds
// and its detail names the Slurm job it ran on. Screenshots at desktop and phone width, light and
// dark.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { launchBrowser, openPage, lifelineUp, api, until, axeViolations, SCREENSHOTS, startAgent as startAgentWith } from './support.mjs';

// One Slurm executor, no block until a task asks for one, at most one; a block is kept while the
// test looks at it (idle_timeout) and cannot outlive it by much (block_walltime).
const CONFIG = `[[executor]]
label = "cpu"
provider = "slurm"
workers_per_node = 1

[executor.slurm]
exclusive = false
block_walltime = "00:05:00"
init_blocks = 0
min_blocks = 0
max_blocks = 1
idle_timeout = 600
`;

const NAP = 'import time\n\ndef nap(seconds):\n    time.sleep(seconds)\n    return seconds\n';

let browser;
let up;
let agent;
let cluster;
const jobs = new Set();

/** Whether this machine's Slurm answers (scripts/slurm starts it). */
function slurmAnswers() {
  try {
    return /idle|mixed|allocated/.test(execFileSync('sinfo', ['-h', '-o', '%T'], { timeout: 10000 }).toString());
  } catch {
    return false;
  }
}

/** Starts `lifeline endpoint start` for a registered endpoint with `CONFIG`, in its own directory. */
const startAgent = (token) => startAgentWith(up, token, CONFIG);

/** The cluster endpoint's blocks as the service reports them. */
async function blocks() {
  const summary = await api(up.base, up.token, 'GET', `/v1/endpoints/${cluster}`);
  const found = (summary.report?.executors ?? []).flatMap((x) => x.blocks ?? []);
  for (const b of found) if (b.job_id) jobs.add(b.job_id);
  return found;
}

before(async () => {
  assert.ok(slurmAnswers(), 'Slurm does not answer here: scripts/slurm starts a single-node cluster');
  browser = await launchBrowser();
  up = await lifelineUp();
  const registered = await api(up.base, up.token, 'POST', '/v1/endpoints', { name: 'cluster' });
  cluster = registered.endpoint_id;
  agent = await startAgent(registered.token);
  await until('the cluster endpoint online', async () =>
    (await api(up.base, up.token, 'GET', `/v1/endpoints/${cluster}`)).online, 30000);
});

after(async () => {
  await browser?.close();
  await agent?.stop();
  await up?.stop();
  // A stopping agent cancels its blocks; should one still be queued or running, cancel it here,
  // so that no job of this test holds the cluster's CPUs after it.
  for (const job of jobs) {
    try {
      const state = execFileSync('squeue', ['-h', '-o', '%t', '-j', job], { timeout: 10000 }).toString().trim();
      if (/^(PD|CF|R|CG)$/.test(state)) execFileSync('scancel', [job], { timeout: 10000 });
    } catch {
      // The job is already gone from Slurm's books.
    }
  }
});

test('a Slurm-backed endpoint shows its block pending, then running, and the task succeeds on it', async () => {
  const { page, errors } = await openPage(browser, up.url);
  await page.locator('[data-connection="live"]').waitFor({ timeout: 20000 });
  await page.locator('[data-page="endpoints"]').click();
  const row = page.locator(`[data-endpoint-row="${cluster}"]`);
  await row.waitFor();
  assert.equal(await row.locator('[data-block-id]').count(), 0, 'no block before a task asks for one');

  const f = await api(up.base, up.token, 'POST', '/v1/functions', { name: 'nap', kind: 'python', source: NAP, entrypoint: 'nap' });
  const { task_ids: [id] } = await api(up.base, up.token, 'POST', `/v1/endpoints/${cluster}/submit`,
    { tasks: [{ function_id: f.function_id, args: [8] }] });

  // The block appears as soon as the agent has asked Slurm for it: pending, or running already
  // when Slurm started it between two of the page's refreshes.
  const block = row.locator('[data-block-state="pending"], [data-block-state="running"]').first();
  await block.waitFor({ timeout: 60000 });
  const blockId = await block.getAttribute('data-block-id');
  assert.match(blockId, /^\d+$/);
  const first = await block.getAttribute('data-block-state');
  if (first === 'pending') {
    // The task waits for it, and says so beside it.
    await page.screenshot({ path: join(SCREENSHOTS, 'endpoints-block-pending.png'), fullPage: true });
  }

  const running = row.locator(`[data-block-id="${blockId}"][data-block-state="running"]`);
  await running.waitFor({ timeout: 120000 });
  await until('the task on the running block', async () => /1 task\b/.test(await running.textContent()), 60000);
  const text = await running.textContent();
  const [reported] = (await blocks()).filter((b) => String(b.block_id) === blockId);
  assert.ok(reported?.job_id, 'the block has a Slurm job id');
  assert.ok(text.includes(`slurm job ${reported.job_id}`), text);
  assert.match(text, /1\/1 nodes/);
  assert.match(text, /up \d+s/);
  assert.match(text, /\d+m \d+s left/);

  // Desktop and phone, light and dark, while the task runs on the block.
  await page.screenshot({ path: join(SCREENSHOTS, 'endpoints-blocks.png'), fullPage: true });
  assert.deepEqual(await axeViolations(page), [], 'blocks are accessible');
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(SCREENSHOTS, 'endpoints-blocks-dark.png'), fullPage: true });
  assert.deepEqual(await axeViolations(page), [], 'in the dark theme too');
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal overflow at phone width (${overflow}px too wide)`);
  await page.screenshot({ path: join(SCREENSHOTS, 'endpoints-blocks-phone-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.screenshot({ path: join(SCREENSHOTS, 'endpoints-blocks-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1400, height: 900 });

  const doc = await until('the task finished', async () => {
    const d = await api(up.base, up.token, 'GET', `/v1/tasks/${id}`);
    return d.pending ? null : d;
  }, 120000);
  assert.equal(doc.status, 'success', JSON.stringify(doc));

  // The task's detail names the block and the Slurm job it ran on.
  await page.locator('[data-page="lifecycle"]').click();
  await page.locator(`[data-task-id="${id}"]`).click();
  const detail = page.locator(`[data-task-detail="${id}"]`);
  await detail.locator('[data-status="success"]').waitFor();
  const ranOn = await detail.locator('[data-ran-on] [data-attempt="1"]').textContent();
  assert.ok(ranOn.includes(`block ${blockId} (slurm job ${reported.job_id})`), ranOn);
  await page.screenshot({ path: join(SCREENSHOTS, 'task-on-slurm.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(SCREENSHOTS, 'task-on-slurm-phone.png'), fullPage: true });
  await page.close();
  assert.deepEqual(errors, []);
});
