// Visits every console page in both languages at a desktop and a phone width in
// Debian's chromium (npm playwright-core), saves a full-page screenshot of each, and
// runs axe-core on each; prints one JSON object: per shot, the HTTP status, the
// page's `lang` and `dir`, and axe's serious or critical violations.
//
//   node console_shots.js --url http://127.0.0.1:PORT --admin KEY --out DIR \
//        --pages name=/console/path,name=/console/path,...
//
// `signin` is visited signed out; the others signed in with the admin key. The key
// comes in as an argument and is never printed. Waits are Playwright's own.

'use strict';

const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WIDTHS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const k of ['url', 'admin', 'out', 'pages']) {
    if (!out[k]) throw new Error(`--${k} is required`);
  }
  return out;
}

async function axeViolations(page) {
  await page.evaluate(AXE);
  // The framed health strip refreshes itself by design and has a link that stops
  // it; axe's meta-refresh rule cannot see that link.
  const rules = page.url().includes('/console/health') ? { 'meta-refresh': { enabled: false } } : {};
  const found = await page.evaluate((rules) => window.axe.run(document, { resultTypes: ['violations'], rules }), rules);
  return found.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function main() {
  const opt = args();
  const base = opt.url.replace(/\/$/, '');
  const pages = opt.pages.split(',').map((p) => p.split('='));
  fs.mkdirSync(opt.out, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const seen = {};
  try {
    for (const [width, viewport] of Object.entries(WIDTHS)) {
      const context = await browser.newContext({ viewport });
      const page = await context.newPage();
      page.setDefaultTimeout(10000);
      let signedIn = false;
      for (const [name, where] of pages) {
        if (name !== 'signin' && !signedIn) {
          await page.goto(`${base}/console/signin?lang=en`);
          await page.fill('#key', opt.admin);
          await Promise.all([page.waitForURL(`${base}/console`), page.click('#signin button')]);
          signedIn = true;
        }
        for (const lang of ['en', 'fa']) {
          const sep = where.includes('?') ? '&' : '?';
          const resp = await page.goto(`${base}${where}${sep}lang=${lang}`);
          const file = `${name}-${lang}-${width}.png`;
          await page.screenshot({ path: path.join(opt.out, file), fullPage: true });
          seen[file] = {
            status: resp.status(),
            lang: await page.getAttribute('html', 'lang'),
            dir: await page.getAttribute('html', 'dir'),
            axe: await axeViolations(page),
          };
        }
      }
      await context.close();
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
