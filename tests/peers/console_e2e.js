// Drives the otpgw console in a real headless browser (Debian's chromium through
// npm playwright-core), as a help-desk clerk and an administrator would, and prints
// one JSON object with what it saw. tests/gateway/console.rs runs it against the real
// binary, with a card the test has locked, and checks the answers.
//
//   node console_e2e.js --url http://127.0.0.1:PORT --admin KEY --helpdesk KEY \
//        --pan PAN [--shots DIR]
//
// Keys and the card number come in as arguments and are never printed. Waits are
// Playwright's own (navigation and locators), never timers.

'use strict';

const { chromium, request } = require('playwright-core');
const path = require('path');

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const k of ['url', 'admin', 'helpdesk', 'pan']) {
    if (!out[k]) throw new Error(`--${k} is required`);
  }
  return out;
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
    if (opt.shots) await page.screenshot({ path: path.join(opt.shots, `${name}.png`) });
  };
  // Nothing secret may ever be on a page; checked on every page the script sees.
  const leaks = [];
  const checkPage = async (page, where) => {
    const html = await page.content();
    for (const [what, secret] of [['pan', opt.pan], ['admin key', opt.admin], ['helpdesk key', opt.helpdesk]]) {
      if (html.includes(secret)) leaks.push(`${what} on ${where}`);
    }
    if (page.url().includes(opt.pan)) leaks.push(`pan in the URL of ${where}`);
  };

  try {
    // ---- the administrator, in English, then Persian for the screenshots ----------
    const admin = await browser.newContext({ viewport: { width: 900, height: 700 } });
    const page = await admin.newPage();
    page.setDefaultTimeout(10000);

    await page.goto(`${base}/console?lang=en`);
    seen.unsigned_redirect = new URL(page.url()).pathname;
    await shot(page, 'signin-en');
    await page.fill('#key', opt.admin);
    await Promise.all([page.waitForURL(`${base}/console`), page.click('#signin button')]);
    seen.admin_signed_in = (await page.locator('#health').count()) === 1;
    const cookies = await admin.cookies();
    const session = cookies.find((c) => c.name === 'otpgw_console');
    seen.cookie = session && { httpOnly: session.httpOnly, sameSite: session.sameSite, path: session.path };
    await checkPage(page, 'home');
    await shot(page, 'home-en');

    await page.fill('#pan', opt.pan);
    await Promise.all([page.waitForURL(/\/console\/cards\/\d+$/), page.click('#find-pan button')]);
    const cardUrl = page.url();
    seen.card_path = new URL(cardUrl).pathname;
    seen.locked_status = await page.getAttribute('#status', 'data-status');
    seen.locked_why = await page.textContent('#why');
    seen.locked_failures = (await page.textContent('#failures')).trim();
    seen.admin_sees_suspend = (await page.locator('#suspend').count()) === 1;
    seen.verifications_rows = await page.locator('#verifications tbody tr').count();
    await checkPage(page, 'card');
    await shot(page, 'card-en');
    await page.goto(`${cardUrl}?lang=fa`);
    seen.fa_dir = await page.getAttribute('html', 'dir');
    await shot(page, 'card-fa');
    await page.goto(`${base}/console`);
    await shot(page, 'home-fa');
    await page.goto(`${cardUrl}?lang=en`);

    // Re-activate with a reason.
    await page.fill('#reactivate-reason', 'Customer called the help desk; identity checked');
    await Promise.all([page.waitForURL(/done=reactivated/), page.click('#reactivate button')]);
    seen.reactivated_status = await page.getAttribute('#status', 'data-status');
    seen.reactivated_notice = await page.textContent('#notice');

    // The audit trail shows it, with the reason and the clerk's key.
    await page.click('#card-audit');
    await page.waitForURL(/\/console\/audit\?card=\d+/);
    const row = page.locator('#events tbody tr', { hasText: 'reactivated' }).first();
    seen.audit_reactivated = (await row.textContent()).replace(/\s+/g, ' ');
    await checkPage(page, 'audit');
    await shot(page, 'audit-en');
    const csv = await page.request.get(`${base}/console/audit.csv?card=${seen.card_path.split('/').pop()}`);
    seen.csv_type = csv.headers()['content-type'];
    seen.csv_disposition = csv.headers()['content-disposition'];
    seen.csv_has_reason = (await csv.text()).includes('identity checked');
    await page.goto(`${base}/console/audit?lang=fa`);
    await shot(page, 'audit-fa');

    await page.goto(`${base}/console/keys?lang=en`);
    seen.keys_rows = await page.locator('#keys tbody tr').count();
    await checkPage(page, 'keys');
    await shot(page, 'keys-en');
    await page.goto(`${base}/console/keys?lang=fa`);
    await shot(page, 'keys-fa');
    await page.goto(`${base}/console/signin?lang=fa`);
    await shot(page, 'signin-fa');
    await page.goto(`${cardUrl}?lang=en`);

    // A change without the CSRF token, or with a wrong one, is refused; so is one
    // from another origin. The session cookie goes with these requests.
    const csrf = await page.getAttribute('#suspend input[name=csrf]', 'value');
    const suspendUrl = `${cardUrl}/suspend`;
    seen.no_csrf = (await page.request.post(suspendUrl, { form: { reason: 'no token' } })).status();
    seen.bad_csrf = (await page.request.post(suspendUrl, { form: { csrf: 'f'.repeat(64), reason: 'bad token' } })).status();
    seen.cross_origin = (await page.request.post(suspendUrl, {
      form: { csrf, reason: 'cross origin' }, headers: { Origin: 'http://attacker.example' },
    })).status();
    await page.reload();
    seen.after_refused_status = await page.getAttribute('#status', 'data-status');

    // Sign out; the old cookie no longer opens anything.
    await Promise.all([page.waitForURL(`${base}/console/signin`), page.click('#signout button')]);
    seen.signed_out_at = new URL(page.url()).pathname;
    const replay = await request.newContext({
      extraHTTPHeaders: { Cookie: `otpgw_console=${session.value}` },
    });
    const old = await replay.get(`${base}/console`, { maxRedirects: 0 });
    seen.old_cookie_get = { status: old.status(), location: old.headers()['location'] };
    seen.old_cookie_post = (await replay.post(suspendUrl, { form: { csrf, reason: 'replayed' } })).status();
    await replay.dispose();
    await admin.close();

    // ---- the help desk, in Persian --------------------------------------------------
    const desk = await browser.newContext({ viewport: { width: 390, height: 800 } });
    const dpage = await desk.newPage();
    dpage.setDefaultTimeout(10000);
    await dpage.goto(`${base}/console/signin?lang=fa`);
    await dpage.fill('#key', opt.helpdesk);
    await Promise.all([dpage.waitForURL(`${base}/console`), dpage.click('#signin button')]);
    seen.helpdesk_keys_link = await dpage.locator('a[href="/console/keys"]').count();
    await dpage.fill('#pan', opt.pan);
    await Promise.all([dpage.waitForURL(/\/console\/cards\/\d+$/), dpage.click('#find-pan button')]);
    seen.helpdesk_lang = await dpage.getAttribute('html', 'lang');
    seen.helpdesk_sees_suspend = await dpage.locator('#suspend').count();
    await checkPage(dpage, 'helpdesk card');
    await shot(dpage, 'card-fa-phone');
    const hcsrf = await dpage.getAttribute('#signout input[name=csrf]', 'value');
    const forged = await dpage.request.post(`${dpage.url()}/suspend`, { form: { csrf: hcsrf, reason: 'forged' } });
    seen.helpdesk_forged_suspend = forged.status();
    seen.helpdesk_keys_page = (await dpage.request.get(`${base}/console/keys`)).status();
    await dpage.reload();
    seen.after_forged_status = await dpage.getAttribute('#status', 'data-status');
    await desk.close();
  } finally {
    seen.leaks = leaks;
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
