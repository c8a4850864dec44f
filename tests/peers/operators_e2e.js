// Local console operators in a real headless browser (Debian's chromium through
// npm playwright-core), and prints one JSON object with what it saw.
// tests/gateway/console/operators.rs runs it against the real binary with two
// operators the CLI added (an admin and a help-desk clerk) and an admin API key.
//
//   node operators_e2e.js --url http://127.0.0.1:PORT --admin NAME --admin-password PW \
//        --helpdesk NAME --helpdesk-password PW --key ADMIN_API_KEY [--shots DIR]
//
// The TOTP code is computed here (RFC 6238, SHA-1, 6 digits, 30 s) from the secret
// in the `otpauth://` URI the enrolment page shows as text. Passwords and the key
// come in as arguments and are never printed. Waits are Playwright's own.

'use strict';

const { chromium } = require('playwright-core');
const crypto = require('crypto');
const path = require('path');

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const k of ['url', 'admin', 'admin-password', 'helpdesk', 'helpdesk-password', 'key']) {
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

/// RFC 6238 with SHA-1, 6 digits, 30 s steps; `offset` steps from now.
function totp(uri, offset = 0) {
  const secret = base32(new URL(uri).searchParams.get('secret'));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + offset));
  const mac = crypto.createHmac('sha1', secret).update(counter).digest();
  const o = mac[mac.length - 1] & 15;
  const n = (mac.readUInt32BE(o) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, '0');
}

async function main() {
  const opt = args();
  const base = opt.url.replace(/\/$/, '');
  const seen = {};
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const shot = async (page, name) => {
    if (opt.shots) await page.screenshot({ path: path.join(opt.shots, `${name}.png`), fullPage: true });
  };
  const leaks = [];
  const checkPage = async (page, where) => {
    const html = await page.content();
    for (const [what, secret] of [['admin password', opt['admin-password']],
      ['helpdesk password', opt['helpdesk-password']], ['key', opt.key]]) {
      if (html.includes(secret)) leaks.push(`${what} on ${where}`);
    }
  };
  const fresh = async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    return page;
  };
  const password = async (page, name, pw) => {
    await page.goto(`${base}/console/signin?lang=en`);
    await page.fill('#name', name);
    await page.fill('#password', pw);
    await Promise.all([page.waitForNavigation(), page.click('#signin-operator button')]);
  };
  const code = async (page, value) => {
    await page.fill('#code', value);
    await Promise.all([page.waitForNavigation(), page.click('#signin-code button')]);
  };

  try {
    // ---- the admin's first sign-in: password, then TOTP enrolment --------------------
    const page = await fresh();
    await password(page, opt.admin, opt['admin-password']);
    seen.enrol_path = new URL(page.url()).pathname;
    const uri = (await page.textContent('#otpauth')).trim();
    seen.uri_prefix = uri.slice(0, uri.indexOf('?'));
    seen.qr_svg = await page.locator('#qr svg').count();
    await checkPage(page, 'enrolment');
    await code(page, totp(uri));
    seen.admin_home = new URL(page.url()).pathname;
    seen.admin_who = (await page.textContent('.who')).replace(/\s+/g, ' ').trim();
    const session = (await page.context().cookies()).find((c) => c.name === 'otpgw_console');
    seen.session_cookie = session && { httpOnly: session.httpOnly, sameSite: session.sameSite };

    // ---- the operators page: not oneself --------------------------------------------
    await page.goto(`${base}/console/operators?lang=en`);
    await checkPage(page, 'operators');
    await shot(page, 'operators-en');
    const disableSelf = await Promise.all([
      page.waitForNavigation(),
      page.click(`#operator-${opt.admin} button:has-text("Disable")`),
    ]);
    seen.disable_self_status = disableSelf[0].status();
    seen.disable_self_says = (await page.textContent('#error')).trim();
    await page.goto(`${base}/console/operators?lang=en`);
    seen.own_session_row = await page.locator('#sessions td:has-text("this session")').count();

    // ---- the help desk: five wrong passwords lock, the admin enables ---------------
    const desk = await fresh();
    for (let i = 0; i < 5; i += 1) await password(desk, opt.helpdesk, 'Not my password 5');
    seen.wrong_says = (await desk.textContent('#error')).trim();
    await password(desk, opt.helpdesk, opt['helpdesk-password']);
    seen.locked_right_password_path = new URL(desk.url()).pathname;
    seen.locked_says = (await desk.textContent('#error')).trim();
    await page.goto(`${base}/console/operators?lang=en`);
    seen.desk_state_locked = (await page.textContent(`#operator-${opt.helpdesk} td.state`)).trim();
    await Promise.all([
      page.waitForNavigation(),
      page.click(`#operator-${opt.helpdesk} button:has-text("Enable")`),
    ]);
    seen.desk_state_enabled = (await page.textContent(`#operator-${opt.helpdesk} td.state`)).trim();
    await password(desk, opt.helpdesk, opt['helpdesk-password']);
    const deskUri = (await desk.textContent('#otpauth')).trim();
    await code(desk, totp(deskUri));
    seen.desk_home = new URL(desk.url()).pathname;
    seen.desk_operators_link = await desk.locator('a[href="/console/operators"]').count();
    seen.desk_operators_status = (await desk.goto(`${base}/console/operators?lang=fa`)).status();

    // ---- an API-key admin cannot disable the last operator admin -------------------
    const keyPage = await fresh();
    await keyPage.goto(`${base}/console/signin?lang=en`);
    await keyPage.fill('#key', opt.key);
    await Promise.all([keyPage.waitForNavigation(), keyPage.click('#signin button')]);
    await keyPage.goto(`${base}/console/operators?lang=en`);
    const lastAdmin = await Promise.all([
      keyPage.waitForNavigation(),
      keyPage.click(`#operator-${opt.admin} button:has-text("Disable")`),
    ]);
    seen.last_admin_status = lastAdmin[0].status();
    seen.last_admin_says = (await keyPage.textContent('#error')).trim();

    // ---- the audit names each person --------------------------------------------------
    await page.goto(`${base}/console/audit?lang=en`);
    await shot(page, 'operators-audit-en');
    // Each row as its stored kind and actor, then what the page says.
    seen.audit = await page.locator('table tbody tr').evaluateAll((trs) => trs.map((tr) =>
      `${tr.dataset.kind} ${tr.dataset.actor} ${tr.textContent.replace(/\s+/g, ' ').trim()}`));
    await page.goto(`${base}/console/operators?lang=fa`);
    await shot(page, 'operators-fa');
    seen.leaks = leaks;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
