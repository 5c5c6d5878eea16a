// Browser end-to-end test of the mypay back-office console (/admin), in headless Chromium.
//
// It starts a sandbox bank and `mypay serve` of its own (SQLite, everything in a temp dir),
// makes the data it needs through the HTTP API (an operator, a member and a card payment, a
// dead letter from a business remittance whose bank collect times out, a settlement run for
// yesterday in KST), then drives the console as an operator would: log in, search by each kind
// of number, read a payment's ledger postings, retry a dead letter through its confirmation and
// find it in the audit log, download a settlement run's CSV report. A screenshot is taken after
// each step into e2e/artifacts/, with the servers' logs.
//
//   node e2e/console.test.mjs                  (from the repo root, or `npm test` in e2e/)
//   MYPAY_BIN=path/to/mypay   the binary (default: ../target/debug/mypay, from this file)
//   CHROMIUM=path/to/chromium the browser (default: /usr/bin/chromium)
//   E2E_KEEP=1                keep the temp data dir
//   E2E_HEADED=1              show the browser (needs a display)
//
// Exits 0 when every step passed, 1 otherwise; the last line reads "N passed, N failed".

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(process.env.MYPAY_BIN ?? join(HERE, '..', 'target', 'debug', 'mypay'));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(HERE, 'artifacts');
const ADMIN_KEY = 'mpk_e2e_admin_key_0123456789abcdefghijklmnopqrstu';
const OPERATOR = { email: 'e2e-ops@example.com', name: 'E2E Operator', password: 'correct horse battery e2e' };
const BUYER = { email: 'e2e-buyer@example.com', phone: '010-3000-0001', name: '김구매', password: 'buyer password 123' };
const CHECKOUT_ID = 'chk-e2e-1';
const MERCHANT_ORDER = 'order-e2e-1';
// Accounts at the sandbox bank: a shop's settlement account, and a business that remits.
const SHOP_ACCOUNT = { bank_code_std: '004', account_num: '330444555666', account_holder_name: '주식회사꽃집', balance_amt: '0' };
const SENDER_ACCOUNT = { bank_code_std: '004', account_num: '440555666777', account_holder_name: '주식회사보내는', balance_amt: '1000000' };
const STEP_TIMEOUT_MS = 15_000;
const CSV_HEADER = 'settlement_id,merchant_id,merchant_name,currency,sales,fee_bps,gross,fee,net,status,bank_transfer_id';

// ---------------------------------------------------------------------------------------------
// Processes

const children = [];

function fail(message) {
  throw new Error(message);
}

/** Starts `mypay ARGS`, resolves with its base URL once it prints `listening on http://…`. */
function startMypay(name, args, { timeoutMs = 30_000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG ?? 'info' } });
    const entry = { name, child, log: '', exited: false };
    children.push(entry);
    let settled = false;
    const timer = setTimeout(() => {
      if (!settled) {
        settled = true;
        reject(new Error(`${name} did not print "listening on" within ${timeoutMs} ms:\n${entry.log.slice(-2000)}`));
      }
    }, timeoutMs);
    const onData = (chunk) => {
      entry.log += chunk.toString();
      const match = entry.log.match(/listening on (http:\/\/\S+)/);
      if (match && !settled) {
        settled = true;
        clearTimeout(timer);
        resolvePromise({ ...entry, url: match[1].replace(/\/$/, '') });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (error) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(new Error(`${name}: could not start ${BIN}: ${error.message}`));
      }
    });
    child.on('exit', (code, signal) => {
      entry.exited = true;
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code ?? signal}) before listening:\n${entry.log.slice(-2000)}`));
      }
    });
  });
}

/** SIGTERM every child, SIGKILL what is still there after 5 s; writes their logs. */
async function stopAll() {
  await Promise.all(
    children.map(
      (entry) =>
        new Promise((done) => {
          if (entry.exited || entry.child.exitCode !== null) return done();
          const kill = setTimeout(() => entry.child.kill('SIGKILL'), 5_000);
          entry.child.once('exit', () => {
            clearTimeout(kill);
            done();
          });
          entry.child.kill('SIGTERM');
        }),
    ),
  );
  for (const entry of children) {
    try {
      writeFileSync(join(ARTIFACTS, `${entry.name}.log`), entry.log);
    } catch {
      // the artifacts folder is best effort
    }
  }
}

// Never leave a server behind, whatever ends this process.
process.on('exit', () => {
  for (const entry of children) if (!entry.exited && entry.child.exitCode === null) entry.child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    console.error(`\n${signal}: stopping the servers`);
    await stopAll();
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP

/** A JSON request; fails with the status and body unless the status is one of `expect`. */
async function api(base, method, path, { body, token, headers = {}, expect = [200, 201, 202] } = {}) {
  const response = await fetch(base + path, {
    method,
    headers: {
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  if (!expect.includes(response.status)) {
    fail(`${method} ${path} answered ${response.status} (expected ${expect.join(' or ')}): ${text.slice(0, 1000)}`);
  }
  return json;
}

async function poll(what, fn, { timeoutMs = 30_000, everyMs = 250 } = {}) {
  const until = Date.now() + timeoutMs;
  let last;
  while (Date.now() < until) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Yesterday's date in KST (UTC+9, no DST): its next-day midnight has passed. */
function yesterdayKst() {
  const kstNow = new Date(Date.now() + 9 * 3600_000);
  kstNow.setUTCDate(kstNow.getUTCDate() - 1);
  return kstNow.toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------------
// Steps

const results = [];
let shot = 0;

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

async function screenshot(page, name) {
  if (!page) return;
  shot += 1;
  const file = join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${slug(name)}.png`);
  try {
    await page.screenshot({ path: file, fullPage: true });
  } catch (error) {
    console.error(`   (no screenshot: ${error.message.split('\n')[0]})`);
  }
}

/**
 * Runs one step; records and prints its outcome and screenshots the page after it. A step
 * whose `needs` failed or was skipped is skipped. Returns whether it passed.
 */
async function step(name, page, fn, { needs = [] } = {}) {
  const missing = needs.filter((n) => !results.some((r) => r.name === n && r.status === 'passed'));
  if (missing.length) {
    results.push({ name, status: 'skipped', why: `needs: ${missing.join(', ')}` });
    console.log(`SKIP ${name} (needs: ${missing.join(', ')})`);
    return false;
  }
  const started = Date.now();
  try {
    await fn();
    results.push({ name, status: 'passed' });
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
    await screenshot(page, name);
    return true;
  } catch (error) {
    results.push({ name, status: 'failed', why: error.message });
    console.log(`FAIL ${name} (${Date.now() - started} ms)\n     ${error.message.split('\n').join('\n     ')}`);
    if (page) console.log(`     at ${page.url()}`);
    await screenshot(page, `${name} FAILED`);
    return false;
  }
}

function assert(condition, message) {
  if (!condition) fail(message);
}

function pathOf(page) {
  const url = new URL(page.url());
  return url.pathname + url.search;
}

async function expectPath(page, expected, what) {
  try {
    await page.waitForURL((url) => url.pathname + url.search === expected, { timeout: STEP_TIMEOUT_MS });
  } catch {
    fail(`${what}: expected to land on ${expected}, but the browser is at ${pathOf(page)}`);
  }
}

async function expectText(locator, expected, what) {
  try {
    await locator.filter({ hasText: expected }).first().waitFor({ timeout: STEP_TIMEOUT_MS });
  } catch {
    const shown = (await locator.allInnerTexts().catch(() => [])).join(' | ').slice(0, 600);
    fail(`${what}: "${expected}" is not shown (found: ${shown || 'nothing'})`);
  }
}

/** The <section> whose <h2> is `heading` (the console's page layout). */
function section(page, heading) {
  return page.locator('section').filter({ has: page.getByRole('heading', { level: 2, name: heading, exact: true }) });
}

/** The text of a page's `<dt>label</dt><dd>…</dd>` field, or null when it has none. */
async function field(page, label) {
  const dd = page.locator('main dl dt', { hasText: new RegExp(`^\\s*${label}\\s*$`) }).locator('xpath=following-sibling::dd[1]');
  return (await dd.count()) > 0 ? (await dd.first().innerText()).trim() : null;
}

/** Follows a header nav link by its text, or goes to `fallback` when the link is missing. */
async function navigate(page, text, fallback) {
  const link = page.locator('header nav').getByRole('link', { name: text, exact: true });
  if ((await link.count()) > 0) {
    await link.first().click();
    return true;
  }
  console.log(`     (no "${text}" link in the header; going to ${fallback} directly)`);
  await page.goto(fallback);
  return false;
}

// ---------------------------------------------------------------------------------------------
// The run

async function main() {
  if (!existsSync(BIN)) fail(`no mypay binary at ${BIN}: build it (cargo build -p mypay --bin mypay) or set MYPAY_BIN`);
  if (!existsSync(CHROMIUM)) fail(`no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM`);
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'mypay-e2e-'));
  console.log(`mypay: ${BIN}\nchromium: ${CHROMIUM}\ndata: ${dir}\nartifacts: ${ARTIFACTS}\n`);

  let browser;
  try {
    // --- Servers -------------------------------------------------------------------------
    const bank = await startMypay('sandbox-bank', ['sandbox-bank', '--listen', '127.0.0.1:0', '--data', join(dir, 'bank')]);
    // One attempt per remittance step, no pause: a timed-out collect is a dead letter at once.
    // The schedules are off so that nothing re-queues the dead letter behind the test's back.
    const server = await startMypay('mypay-serve', [
      'serve',
      '--listen', '127.0.0.1:0',
      '--database-url', `sqlite://${join(dir, 'mypay.db')}`,
      '--admin-api-key', ADMIN_KEY,
      '--bank-url', bank.url,
      '--sandbox-psp-data', join(dir, 'psp'),
      '--account-key-file', join(dir, 'account-keys'),
      '--settlement-report-dir', join(dir, 'reports'),
      '--remittance-step-attempts', '1',
      '--remittance-step-delay-s', '0',
      '--schedule', 'settlement=off',
      '--schedule', 'ledger-check=off',
      '--schedule', 'reconciliation=off',
      '--schedule', 'remittance-retry=off',
      '--schedule', 'remittance-monitor=off',
    ]);
    const MYPAY = server.url;
    const BANK = bank.url;
    console.log(`sandbox bank ${BANK}, mypay ${MYPAY}\n`);

    // --- Data through the API ------------------------------------------------------------
    const data = {};
    await step('API: create an operator', null, async () => {
      const operator = await api(MYPAY, 'POST', '/v1/admin/operators', { token: ADMIN_KEY, body: OPERATOR, expect: [201] });
      assert(String(operator.id).startsWith('opr_'), `operator id ${operator.id}`);
    });

    await step('API: a member pays a shop by card (checkout)', null, async () => {
      const member = await api(MYPAY, 'POST', '/v1/members', { body: BUYER, expect: [201] });
      data.memberId = member.id;
      assert(String(member.id).startsWith('usr_'), `member id ${member.id}`);
      const session = await api(MYPAY, 'POST', '/v1/sessions', { body: { email: BUYER.email, password: BUYER.password } });
      await api(BANK, 'POST', '/admin/accounts', { body: SHOP_ACCOUNT });
      const shop = await api(MYPAY, 'POST', '/v1/merchants', {
        token: ADMIN_KEY,
        headers: { 'Idempotency-Key': 'e2e-shop-1' },
        body: { name: '꽃집', fee_bps: 250, settlement_account: { bank_code: SHOP_ACCOUNT.bank_code_std, account_number: SHOP_ACCOUNT.account_num, holder_name: SHOP_ACCOUNT.account_holder_name } },
        expect: [201],
      });
      data.shopId = shop.id;
      // Card only: no wallet money, so no linked bank account is needed.
      const payment = await api(MYPAY, 'POST', '/v1/payments', {
        token: session.token,
        body: {
          checkout_id: CHECKOUT_ID,
          funding: { card: { billing_key: 'bk_test_ok_1', amount: '15000' } },
          payment_orders: [{ seller_account: shop.id, amount: '15000', currency: 'KRW', payment_order_id: MERCHANT_ORDER }],
        },
        expect: [201],
      });
      assert(payment.status === 'succeeded', `payment status ${payment.status}: ${JSON.stringify(payment)}`);
      data.paymentId = payment.id;
      data.orderId = payment.payment_orders[0].id;
      data.paymentKey = payment.payment_orders[0].card?.payment_key ?? null;
      assert(String(data.orderId).startsWith('po_'), `order id ${data.orderId}`);
    });

    await step('API: a business remittance whose collect times out is a dead letter', null, async () => {
      await api(BANK, 'POST', '/admin/accounts', { body: SENDER_ACCOUNT });
      const sender = await api(MYPAY, 'POST', '/v1/merchants', {
        token: ADMIN_KEY,
        headers: { 'Idempotency-Key': 'e2e-sender-1' },
        body: { name: '보내는상사', fee_bps: 0, settlement_account: { bank_code: SENDER_ACCOUNT.bank_code_std, account_number: SENDER_ACCOUNT.account_num, holder_name: SENDER_ACCOUNT.account_holder_name } },
        expect: [201],
      });
      await api(MYPAY, 'POST', `/v1/merchants/${sender.id}/debit-mandate`, { token: ADMIN_KEY, body: {} });
      // The bank answers no collect (HTTP 504 at once, nothing executed): mypay's bank client
      // inquires and sends again within the attempt, the outcome stays unknown, and the step's
      // only attempt is used up.
      await api(BANK, 'PUT', '/admin/faults', { body: { faults: [{ op: 'collect', kind: 'timeout', hold_ms: 0 }] } });
      const remittance = await api(MYPAY, 'POST', '/v1/remittances', {
        token: ADMIN_KEY,
        headers: { 'Idempotency-Key': 'e2e-remit-1' },
        body: { sender_merchant_id: sender.id, recipient_merchant_id: data.shopId, amount: '250000', currency: 'KRW', memo: '물품대금' },
        expect: [202],
      });
      data.remittanceId = remittance.id;
      const job = await poll('a dead letter', async () => {
        const jobs = await api(MYPAY, 'GET', '/v1/admin/jobs?state=dead', { token: ADMIN_KEY });
        return jobs.data.find((j) => String(j.kind).startsWith('remittance')) ?? null;
      });
      data.jobId = job.id;
      console.log(`     dead letter ${job.id} (${job.kind}): ${job.last_error}`);
      // The bank is well again: the operator's retry can finish the remittance.
      await api(BANK, 'DELETE', '/admin/faults');
    });

    await step('API: a settlement run for yesterday (KST)', null, async () => {
      data.settlementDate = yesterdayKst();
      const run = await api(MYPAY, 'POST', '/v1/settlements/runs', { token: ADMIN_KEY, body: { date: data.settlementDate } });
      assert(run.date === data.settlementDate, `run date ${run.date}`);
      console.log(`     run ${run.date}: ${run.state}, ${run.settlements} settlements`);
    });

    // --- The console in Chromium ---------------------------------------------------------
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox'],
      headless: !process.env.E2E_HEADED,
    });
    const context = await browser.newContext({ baseURL: MYPAY, acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    const page = await context.newPage();
    const header = page.locator('header');

    await step('console: a wrong password is refused', page, async () => {
      await page.goto('/admin/login');
      await page.getByLabel('Email').fill(OPERATOR.email);
      await page.getByLabel('Password').fill('not the password at all');
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/admin/login'),
        page.getByRole('button', { name: 'Log in' }).click(),
      ]);
      assert(response.status() === 401, `the login answered ${response.status()}, not 401`);
      await expectText(page.getByRole('alert'), 'The email or password is not right.', 'login error');
    }, { needs: ['API: create an operator'] });

    await step('console: log in', page, async () => {
      await page.goto('/admin/login');
      await page.getByLabel('Email').fill(OPERATOR.email);
      await page.getByLabel('Password').fill(OPERATOR.password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await expectPath(page, '/admin', 'after logging in');
      await expectText(page.getByRole('heading', { level: 1 }), 'Dashboard', 'dashboard heading');
      await expectText(header, OPERATOR.email, 'the operator in the header');
    }, { needs: ['API: create an operator'] });

    const search = async (number, expected, what) => {
      await page.getByLabel('Search by number').fill(number);
      await header.getByRole('button', { name: 'Search', exact: true }).click();
      await expectPath(page, expected, `searching ${what} ${number}`);
    };
    const paymentPath = () => `/admin/payments/${data.paymentId}`;
    const memberPath = () => `/admin/members/${data.memberId}`;
    const paid = ['console: log in', 'API: a member pays a shop by card (checkout)'];
    await step('console: search the payment by payment id', page, () => search(data.paymentId, paymentPath(), 'payment id'), { needs: paid });
    await step('console: search the payment by order id', page, () => search(data.orderId, paymentPath(), 'order id'), { needs: paid });
    await step('console: search the payment by merchant order number', page, () => search(MERCHANT_ORDER, paymentPath(), 'merchant order number'), { needs: paid });
    await step('console: search the payment by checkout id', page, () => search(CHECKOUT_ID, paymentPath(), 'checkout id'), { needs: paid });
    await step('console: search the payment by PSP payment key', page, async () => {
      assert(data.paymentKey, 'the payment answer carries no card payment_key');
      await search(data.paymentKey, paymentPath(), 'PSP payment key');
    }, { needs: paid });
    await step('console: search the member by email', page, () => search(BUYER.email, memberPath(), 'member email'), { needs: paid });
    await step('console: search the member by member id', page, () => search(data.memberId, memberPath(), 'member id'), { needs: paid });

    await step('console: the payment page shows orders, refunds and ledger postings', page, async () => {
      await search(data.paymentId, paymentPath(), 'payment id');
      for (const heading of ['Orders', 'Refunds', 'Ledger postings']) {
        const count = await section(page, heading).count();
        assert(count > 0, `no "${heading}" section on the payment page`);
      }
      await expectText(section(page, 'Orders').locator('table'), MERCHANT_ORDER, 'Orders table');
      const postings = section(page, 'Ledger postings').locator('table tbody tr');
      await expectText(postings, `liability:merchant:${data.shopId}:payable:KRW`, 'Ledger postings table');
      await section(page, 'Ledger postings').scrollIntoViewIfNeeded();
    }, { needs: paid });

    const dead = ['console: log in', 'API: a business remittance whose collect times out is a dead letter'];
    await step('console: the dead letter is listed and opens', page, async () => {
      await navigate(page, 'Dead letters', '/admin/jobs?state=dead');
      await expectPath(page, '/admin/jobs?state=dead', 'Dead letters link');
      const link = page.locator('table tbody tr td:first-child a', { hasText: data.jobId });
      assert((await link.count()) === 1, `job ${data.jobId} is not linked in the first column of the dead letters table`);
      await link.click();
      await expectPath(page, `/admin/jobs/${data.jobId}`, 'the job link');
      const state = await field(page, 'State');
      assert(state === 'dead', `the job page shows state ${state}, not dead`);
    }, { needs: dead });

    await step('console: retry the dead letter through the confirmation', page, async () => {
      await page.getByRole('link', { name: 'Retry this job…' }).click();
      await expectPath(page, `/admin/jobs/${data.jobId}/retry`, 'the retry link');
      await page.getByRole('button', { name: 'Retry job' }).click();
      await page.waitForURL((url) => url.pathname === `/admin/jobs/${data.jobId}`, { timeout: STEP_TIMEOUT_MS });
      await expectText(page.getByRole('status'), 'The job was retried.', 'the flash after retrying');
      const state = await field(page, 'State');
      assert(['queued', 'running', 'done'].includes(state), `the job page shows state ${state} after the retry, not queued (or later)`);
      console.log(`     the job page shows state ${state}`);
      const job = await poll('the retried job to leave the dead letters', async () => {
        const j = await api(MYPAY, 'GET', `/v1/admin/jobs/${data.jobId}`, { token: ADMIN_KEY });
        return j.state !== 'dead' ? j : null;
      }, { timeoutMs: 5_000 });
      console.log(`     job ${data.jobId} is ${job.state}`);
      // Not the console's concern, but it shows the retry was real: the bank is well again.
      const remittance = await poll('the remittance to finish', async () => {
        const r = await api(MYPAY, 'GET', `/v1/remittances/${data.remittanceId}`, { token: ADMIN_KEY });
        return r.finished_at ? r : null;
      }, { timeoutMs: 10_000 }).catch(() => null);
      console.log(`     remittance ${data.remittanceId}: ${remittance ? remittance.state : 'not finished within 10 s'}`);
    }, { needs: ['console: the dead letter is listed and opens'] });

    await step('console: the audit log lists the retry by the operator', page, async () => {
      await navigate(page, 'Audit log', '/admin/audit');
      await expectPath(page, '/admin/audit', 'Audit log link');
      const row = page.locator('table tbody tr', { hasText: 'job.retry' });
      await expectText(row, OPERATOR.email, 'the job.retry row');
      await expectText(row, data.jobId, 'the job.retry row');
    }, { needs: ['console: retry the dead letter through the confirmation'] });

    await step('console: the settlement run downloads its CSV report', page, async () => {
      await navigate(page, 'Settlements', '/admin/settlements');
      await expectPath(page, '/admin/settlements', 'Settlements link');
      const runLink = page.locator('table tbody tr td a', { hasText: data.settlementDate });
      try {
        await runLink.first().waitFor({ timeout: STEP_TIMEOUT_MS });
      } catch {
        fail(`the settlement run ${data.settlementDate} is not linked on /admin/settlements`);
      }
      await runLink.first().click();
      await expectPath(page, `/admin/settlements/${data.settlementDate}`, 'the run link');
      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: STEP_TIMEOUT_MS }),
        page.getByRole('link', { name: 'Download CSV' }).click(),
      ]);
      const downloaded = new URL(download.url()).pathname;
      assert(downloaded === `/admin/settlements/${data.settlementDate}/report.csv`, `downloaded ${downloaded}`);
      const file = join(ARTIFACTS, download.suggestedFilename() || `settlement-${data.settlementDate}.csv`);
      await download.saveAs(file);
      const failure = await download.failure();
      assert(!failure, `the download failed: ${failure}`);
      const firstLine = readFileSync(file, 'utf8').replace(/^\uFEFF/, '').split(/\r?\n/)[0];
      assert(firstLine === CSV_HEADER, `the CSV's first line is\n  ${firstLine}\nnot\n  ${CSV_HEADER}`);
      console.log(`     saved ${file}`);
    }, { needs: ['console: log in', 'API: a settlement run for yesterday (KST)'] });

    await step('console: log out', page, async () => {
      await header.getByRole('button', { name: 'Log out' }).click();
      await expectPath(page, '/admin/login', 'after logging out');
      await page.goto('/admin');
      await expectPath(page, '/admin/login', 'the dashboard after logging out');
    }, { needs: ['console: log in'] });
  } catch (error) {
    // Setting up (servers, browser) failed: no step can run.
    results.push({ name: 'setup', status: 'failed', why: error.message });
    console.log(`FAIL setup\n     ${error.message.split('\n').join('\n     ')}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopAll();
    if (process.env.E2E_KEEP) console.log(`\nkept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }

  const passed = results.filter((r) => r.status === 'passed').length;
  const failed = results.filter((r) => r.status === 'failed');
  const skipped = results.filter((r) => r.status === 'skipped').length;
  console.log('');
  for (const r of failed) console.log(`failed: ${r.name}: ${r.why.split('\n')[0]}`);
  console.log(`screenshots and logs: ${ARTIFACTS}`);
  console.log(`${passed} passed, ${failed.length} failed${skipped ? `, ${skipped} skipped` : ''}`);
  return failed.length === 0 && skipped === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (error) => {
    console.error(`FAIL ${error.message ?? error}`);
    console.log('0 passed, 1 failed');
    await stopAll();
    process.exit(1);
  },
);
