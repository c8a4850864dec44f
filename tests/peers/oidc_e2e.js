// The console's single sign-on in a real headless browser (Debian's chromium
// through npm playwright-core) against oidc_idp.js (npm oidc-provider), and prints
// one JSON object with what it saw. tests/gateway/console/oidc.rs runs it.
//
//   node oidc_e2e.js --url http://127.0.0.1:PORT --issuer http://localhost:PORT [--shots DIR]
//
// The console is at 127.0.0.1 and the provider at localhost: two sites, as in a
// bank, so the way back from the provider is a cross-site navigation. Waits are
// Playwright's own.

'use strict';

const { chromium, request } = require('playwright-core');
const path = require('path');

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const k of ['url', 'issuer']) if (!out[k]) throw new Error(`--${k} is required`);
  return out;
}

async function main() {
  const opt = args();
  const base = opt.url.replace(/\/$/, '');
  const issuer = opt.issuer.replace(/\/$/, '');
  const idpHost = new URL(issuer).host;
  const seen = {};
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // The provider listens on 127.0.0.1 only; Chromium would try ::1 for localhost.
      '--host-resolver-rules=MAP localhost 127.0.0.1'],
  });
  const api = await request.newContext();
  const shot = async (page, name) => {
    if (opt.shots) await page.screenshot({ path: path.join(opt.shots, `${name}.png`), fullPage: true });
  };
  const fresh = async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('requestfailed', (r) => {
      const { host } = new URL(r.url());
      if (r.url().startsWith(base) || host === idpHost) {
        process.stderr.write(`request failed: ${r.url()} ${r.failure().errorText}\n`);
      }
    });
    return page;
  };
  const tamper = async (mode) => {
    const r = await api.post(`${issuer}/__tamper?mode=${mode}`);
    if (r.status() !== 204) throw new Error(`tamper ${mode}: ${r.status()}`);
  };
  const onConsole = (u) => u.origin === base;
  const text = async (page, sel) => ((await page.textContent(sel)) || '').replace(/\s+/g, ' ').trim();

  // From the console's sign-in page through the provider's own login and consent
  // pages, back to the callback: its response, and the sign-in cookie it carried.
  const signIn = async (page, user, lang = 'en') => {
    await page.goto(`${base}/console/signin?lang=${lang}`);
    const callback = page.waitForResponse((r) => r.url().startsWith(`${base}/console/oidc/callback`));
    callback.catch(() => {}); // awaited below; a failure before then is reported instead
    await Promise.all([page.waitForURL((u) => u.host === idpHost), page.click('#sso')]);
    const cookie = (await page.context().cookies()).find((c) => c.name === 'otpgw_oidc');
    for (let i = 0; i < 4 && new URL(page.url()).host === idpHost; i += 1) {
      if (await page.locator('input[name="login"]').count()) {
        await page.fill('input[name="login"]', user);
        await page.fill('input[name="password"]', 'any password will do');
      }
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    }
    const resp = await callback;
    return { resp, cookie };
  };
  const signedIn = async (page, user) => {
    const { resp, cookie } = await signIn(page, user);
    await page.waitForURL((u) => onConsole(u) && u.pathname === '/console');
    const session = (await page.context().cookies()).find((c) => c.name === 'otpgw_console');
    return {
      callback_status: resp.status(),
      callback_url: resp.url(),
      login_cookie: cookie && { value: cookie.value, httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, path: cookie.path },
      session_cookie: session && { httpOnly: session.httpOnly, sameSite: session.sameSite },
      who: await text(page, '.who'),
      keys_link: await page.locator('a[href="/console/keys"]').count(),
      operators_link: await page.locator('a[href="/console/operators"]').count(),
    };
  };
  const refused = async (page, user, lang = 'en') => {
    const { resp } = await signIn(page, user, lang);
    await page.waitForLoadState();
    return { status: resp.status(), says: await text(page, '#error'), path: new URL(page.url()).pathname };
  };

  try {
    // ---- the sign-in page links to single sign-on ------------------------------------
    const first = await fresh();
    await first.goto(`${base}/console/signin?lang=en`);
    seen.sso_link = await first.locator('a#sso[href="/console/oidc/login"]').count();
    await shot(first, 'oidc-signin-en');

    // ---- the help desk, then an admin ------------------------------------------------
    const hana = await fresh();
    seen.hana = await signedIn(hana, 'hana');
    await shot(hana, 'oidc-helpdesk-home-en');
    // The same callback again, with the same sign-in cookie: used once.
    const again = await api.get(seen.hana.callback_url, {
      headers: { cookie: `otpgw_oidc=${seen.hana.login_cookie.value}` }, maxRedirects: 0,
    });
    seen.replay_status = again.status();
    // Its URL (state and code) in another browser, without the cookie.
    const thief = await fresh();
    await thief.goto(`${base}/console/signin?lang=en`);
    seen.stolen_status = (await thief.goto(seen.hana.callback_url)).status();
    seen.stolen_says = await text(thief, '#error');
    delete seen.hana.login_cookie.value;

    const omid = await fresh();
    seen.omid = await signedIn(omid, 'omid');

    // ---- someone outside the groups ------------------------------------------------
    seen.nima = await refused(await fresh(), 'nima');
    seen.nima_fa = await refused(await fresh(), 'nima', 'fa');

    // ---- tampered ID tokens ---------------------------------------------------------
    for (const mode of ['aud', 'exp', 'sig']) {
      await tamper(mode);
      const page = await fresh();
      seen[`tampered_${mode}`] = await refused(page, 'hana');
      seen[`tampered_${mode}`].session = (await page.context().cookies())
        .filter((c) => c.name === 'otpgw_console' && c.value).length;
    }
    // ---- the provider rotates its key: the JWKS is fetched again -------------------
    await tamper('rotate');
    seen.rotated = await signedIn(await fresh(), 'omid');
    // Another unknown key within the minute: not fetched again, refused.
    const fetches = async () => (await (await api.get(`${issuer}/__jwks_fetches`)).json()).fetches;
    const before = await fetches();
    await tamper('rotate3');
    seen.rotated_again = await refused(await fresh(), 'omid');
    seen.rotated_again.jwks_fetched = (await fetches()) - before;
    await tamper('none');

    // ---- the audit names each person ------------------------------------------------
    await omid.goto(`${base}/console/audit?lang=en`);
    seen.audit = await omid.locator('table tbody tr').evaluateAll(
      (trs) => trs.map((tr) => tr.textContent.replace(/\s+/g, ' ').trim()),
    );
    await omid.goto(`${base}/console/operators?lang=en`);
    seen.sessions = await omid.locator('#sessions tbody tr').evaluateAll(
      (trs) => trs.map((tr) => tr.textContent.replace(/\s+/g, ' ').trim()),
    );

    // ---- an administrator revokes a session from the provider ----------------------
    const hana2 = await fresh();
    await signedIn(hana2, 'hana');
    await omid.goto(`${base}/console/operators?lang=en`);
    await Promise.all([
      omid.waitForNavigation(),
      omid.locator('#sessions tr.session', { hasText: 'oidc:hana' }).first().locator('button').click(),
    ]);
    await hana2.goto(`${base}/console`);
    seen.revoked_home = new URL(hana2.url()).pathname;

    // ---- sign-out: here, then at the provider, then back to the sign-in page --------
    // The sign-out page moves on at once: its body is read as it passes.
    let out = null;
    await hana.route(`${base}/console/signout`, async (route) => {
      const resp = await route.fetch();
      out = { status: resp.status(), body: await resp.text() };
      await route.fulfill({ response: resp, body: out.body });
    });
    await hana.click('#signout button');
    await hana.waitForURL((u) => u.host === idpHost);
    seen.signout_status = out.status;
    const to = /url=([^"]+)"/.exec(out.body);
    seen.signout_to = to ? to[1].replace(/&amp;/g, '&') : out.body.slice(0, 200);
    await Promise.all([
      hana.waitForURL((u) => onConsole(u) && u.pathname === '/console/signin'),
      hana.click('button[value="yes"], button[type="submit"]'),
    ]);
    seen.after_signout = new URL(hana.url()).pathname;
    await hana.goto(`${base}/console`);
    seen.after_signout_home = new URL(hana.url()).pathname;
  } finally {
    await api.dispose();
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(seen)}\n`);
}

main().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(1); });
