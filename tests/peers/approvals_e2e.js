// Two-person rules in a real headless browser (Debian's chromium through npm
// playwright-core), printing one JSON object with what it saw.
// tests/gateway/console/approvals.rs runs it against the real binary started with
// `[console] four_eyes`, two operators the CLI added (a help-desk clerk who
// proposes, an administrator who approves) and a card locked by wrong codes.
//
//   node approvals_e2e.js --url http://127.0.0.1:PORT --proposer NAME --proposer-password PW \
//        --approver NAME --approver-password PW --card ID [--shots DIR]
//
// The TOTP codes are computed here (RFC 6238, SHA-1, 6 digits, 30 s) from the
// `otpauth://` URI each enrolment page shows. Passwords come in as arguments and
// are never printed. Waits are Playwright's own.

'use strict';

const { chromium } = require('playwright-core');
const crypto = require('crypto');
const path = require('path');

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const k of ['url', 'proposer', 'proposer-password', 'approver', 'approver-password', 'card']) {
    if (!out[k]) throw new Error(`--${k} is required`);
  }
  return out;
}

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0; let value = 0; const out = [];
  for (const c of text.replace(/=+$/, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 255); bits -= 8; }
  }
  return Buffer.from(out);
}

function totp(uri) {
  const secret = base32(new URL(uri).searchParams.get('secret'));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000)));
  const mac = crypto.createHmac('sha1', secret).update(counter).digest();
  const o = mac[mac.length - 1] & 15;
  const n = (mac.readUInt32BE(o) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, '0');
}

const text = async (page, selector) => ((await page.textContent(selector)) || '').replace(/\s+/g, ' ').trim();

async function main() {
  const opt = args();
  const base = opt.url.replace(/\/$/, '');
  const card = opt.card;
  const seen = {};
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const shot = async (page, name) => {
    if (opt.shots) await page.screenshot({ path: path.join(opt.shots, `${name}.png`), fullPage: true });
  };
  // Signs in a new browser context as NAME, enrolling TOTP (the first sign-in).
  const signIn = async (name, pw) => {
    const context = await browser.newContext({ viewport: { width: 900, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    await page.goto(`${base}/console/signin?lang=en`);
    await page.fill('#name', name);
    await page.fill('#password', pw);
    await Promise.all([page.waitForNavigation(), page.click('#signin-operator button')]);
    const uri = (await page.textContent('#otpauth')).trim();
    await page.fill('#code', totp(uri));
    await Promise.all([page.waitForNavigation(), page.click('#signin-code button')]);
    return page;
  };

  try {
    // ---- the help desk proposes lifting the lock --------------------------------
    const desk = await signIn(opt.proposer, opt['proposer-password']);
    await desk.goto(`${base}/console/cards/${card}?lang=en`);
    seen.card_status_before = await desk.getAttribute('#status', 'data-status');
    seen.form_says = await text(desk, '#four-eyes-lift_lock');
    await desk.fill('#reactivate-reason', 'customer called back, identity checked');
    const proposed = await Promise.all([desk.waitForNavigation(), desk.click('#reactivate button')]);
    seen.propose_status = proposed[0].status();
    seen.proposed_says = await text(desk, '#proposed');
    const proposal = await desk.getAttribute('#proposed', 'data-proposal');
    await Promise.all([desk.waitForNavigation(), desk.click('#see-approvals')]);
    seen.list_path = new URL(desk.url()).pathname;
    await shot(desk, 'approvals-proposer-en');
    seen.listed = await desk.locator(`#proposal-${proposal}`).count();
    seen.proposer_shown = await text(desk, `#proposal-${proposal} .proposer`);
    seen.open_count = await text(desk, '#approvals-count');
    seen.own_approve_button = await desk.locator(`#approve-${proposal}`).count();
    seen.own_withdraw_button = await desk.locator(`#withdraw-${proposal}`).count();
    // The proposer posts an approval anyway (no button: a crafted post).
    const csrf = await desk.getAttribute('input[name="csrf"]', 'value');
    const own = await desk.request.post(`${base}/console/approvals/${proposal}/approve?lang=en`, {
      form: { csrf }, maxRedirects: 0,
    });
    seen.own_approve_status = own.status();
    seen.own_approve_says = (await own.text()).includes('another person must approve it');
    await desk.goto(`${base}/console/cards/${card}?lang=en`);
    seen.card_status_after_own = await desk.getAttribute('#status', 'data-status');

    // ---- the administrator approves -----------------------------------------------
    const admin = await signIn(opt.approver, opt['approver-password']);
    await admin.goto(`${base}/console/approvals?lang=en`);
    seen.approver_count = await text(admin, '#approvals-count');
    await shot(admin, 'approvals-approver-en');
    const approved = await Promise.all([admin.waitForNavigation(), admin.click(`#approve-${proposal}`)]);
    seen.approve_status = approved[0].status();
    seen.approved_says = await text(admin, '#notice');
    seen.decided_outcome = await admin.getAttribute(`#decided-${proposal}`, 'data-outcome');
    seen.count_after = await text(admin, '#approvals-count');
    await admin.goto(`${base}/console/cards/${card}?lang=en`);
    seen.card_status_after = await admin.getAttribute('#status', 'data-status');
    await admin.goto(`${base}/console/approvals?lang=fa`);
    await shot(admin, 'approvals-fa');
    seen.fa_title = await text(admin, 'h1');

    // ---- the audit names both ---------------------------------------------------------
    await admin.goto(`${base}/console/audit?lang=en`);
    seen.audit = await admin.locator('table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.textContent.replace(/\s+/g, ' ').trim()));
    const html = (await admin.content()) + (await desk.content());
    seen.leaks = [opt['proposer-password'], opt['approver-password']].filter((pw) => html.includes(pw)).length;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
