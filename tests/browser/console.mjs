// The console in Debian's Chromium, driven by Playwright (`playwright-core`, pinned in
// package.json), against `make dev`'s stack: a newcomer's loop, every control found by its role
// and accessible name (as a screen reader finds it), axe-core run in each view (no serious or
// critical violation), the Content-Security-Policy enforced, the keyboard alone enough.
// tests/console.rs starts the stack and runs this script; by hand, with a stack running:
//
//   CONSOLE_URL=http://127.0.0.1:9000/console CONSOLE_API_KEY=wsk_… \
//   RECEIVER_URL=http://127.0.0.1:9200/ RECEIVER_SECRET=whsec_… WINDOW_SECONDS=86400 \
//   node tests/browser/console.mjs
//
// (a window as long as a day makes the "window closed" step wait a day: run make dev with
// DEV_WINDOW_SECONDS=60, as tests/console.rs does). UPDATE_SCREENSHOTS=1 rewrites the README's
// pictures (SCREENSHOTS_DIR, console/screenshots); otherwise nothing is written.
//
// On this branch make dev's graph-stub plays every phone: it taps a template's button and echoes
// texts, so the loop runs on an ordinary number (Spain). The virtual phones' `/reply` (issue 24)
// is not here yet: the phone pane is shown and checked, but not tapped.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';

import axe from 'axe-core';
import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  assert.ok(value, `set ${name}`);
  return value;
};
const CONSOLE_URL = env('CONSOLE_URL');
const KEY = env('CONSOLE_API_KEY');
const RECEIVER_URL = env('RECEIVER_URL');
const RECEIVER_SECRET = env('RECEIVER_SECRET');
const WINDOW_MS = Number(env('WINDOW_SECONDS')) * 1000;
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const SCREENSHOTS_DIR = process.env.SCREENSHOTS_DIR ?? 'console/screenshots';
const UPDATE_SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1';

/** A Spanish mobile: graph-stub taps its template and echoes its messages. */
const PHONE = '+34 688 246 216';
/** A number graph-stub refuses as Meta refuses one off the allowed list (131030). */
const REFUSED = '+34 600 000 042';
/** A virtual phone (+1 NXX 555 0100-0199) that taps Activate by itself (lines 50-59). */
const VIRTUAL = '+1 202 555 0155';
const KEPT_AS = 'sandbox-console.api-key';
/** The phone's tap on Activate, as its bubble reads: the button's text and the time. */
const TAP = /^Activate\s*\d\d:\d\d$/;

// The flags the machine notes ask for; Playwright adds a fresh --user-data-dir of its own (it
// refuses one in `args`), and --no-sandbox is needed as root.
const FLAGS = [
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
];

let browser;
let page;
/** The console's own responses (the page and its assets) the browser received, by URL. */
const received = new Map();

before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  // The CSP bypass lets axe-core be injected; the policy itself is checked in a context
  // without it (the last test).
  const context = await browser.newContext({
    bypassCSP: true,
    viewport: { width: 1360, height: 900 },
    timezoneId: 'UTC',
    locale: 'en-GB',
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(CONSOLE_URL).origin });
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('response', async (response) => {
    const url = new URL(response.url());
    if (url.pathname.includes('/console') && response.status() === 200) {
      received.set(url.href, await response.body().catch(() => Buffer.alloc(0)));
    }
  });
});

after(async () => {
  await browser?.close();
});

// ---- helpers --------------------------------------------------------------------------------

/** Waits until `check()` answers something truthy; fails with `what` after `ms`. */
async function until(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    assert.ok(Date.now() < deadline, `${what}: not within ${ms / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The text of the element with this id (for what is not a control: a status, a fact). */
const textOf = (id) => page.locator(`#${id}`).innerText();

/** A control's accessible description: the text of what its `aria-describedby` names. */
const description = (locator) =>
  locator.evaluate((el) =>
    (el.getAttribute('aria-describedby') ?? '')
      .split(/\s+/)
      .map((id) => document.getElementById(id)?.textContent ?? '')
      .join(' ')
      .replace(/\s+/g, ' ')
      .trim(),
  );

/** axe-core on the page as it is: no serious or critical violation. */
async function noSeriousViolations(view) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.addScriptTag({ content: axe.source });
  const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const serious = violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(serious, [], `axe-core in ${view}`);
  const others = violations.map((v) => `${v.id} (${v.impact})`);
  console.log(`axe-core, ${view}: no serious or critical violation${others.length ? `; also ${others.join(', ')}` : ''}`);
}

/** A picture for the README, only when asked for. */
async function screenshot(name, fullPage = false) {
  if (UPDATE_SCREENSHOTS) await page.screenshot({ path: `${SCREENSHOTS_DIR}/${name}.png`, fullPage });
}

const button = (name) => page.getByRole('button', { name, exact: true });
const textbox = (name) => page.getByRole('textbox', { name, exact: true });
const messages = () => page.getByRole('log', { name: 'Messages' });
const sessionState = () => textOf('session-state');

// ---- the loop -------------------------------------------------------------------------------

test('a wrong key is refused in words, and kept nowhere', async () => {
  await page.goto(CONSOLE_URL);
  await noSeriousViolations('sign-in');
  await textbox('API key').fill('wsk_not_the_key_of_anyone_at_all_0000000000000');
  await button('Sign in').click();
  const key = textbox('API key');
  await until('the refusal', async () => /not accepted/.test(await description(key)));
  assert.match(await description(key), /This API key was not accepted: it is unknown or disabled/);
  assert.equal(await key.getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate((name) => sessionStorage.getItem(name), KEPT_AS), null);
  assert.ok(await page.locator('#app-view').isHidden());
  await noSeriousViolations('sign-in, refused');
});

test('the key signs in and is kept in this tab only, never in the URL', async () => {
  await textbox('API key').fill(KEY);
  await button('Sign in').click();
  await page.getByRole('tab', { name: 'Sandbox', selected: true }).waitFor();
  assert.equal(await page.evaluate((name) => sessionStorage.getItem(name), KEPT_AS), KEY);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.ok(!page.url().includes(KEY));
  assert.deepEqual(await page.context().cookies(), []);
  // A reload keeps the tab signed in (sessionStorage survives it).
  await page.reload();
  await page.getByRole('tab', { name: 'Sandbox', selected: true }).waitFor();
  assert.ok(await page.locator('#session-none').isVisible());
  assert.match(await textOf('window-status'), /^No live session: create one to message a phone\.$/);
  assert.ok(await textbox('Message').isDisabled());
  await noSeriousViolations('sandbox, no session');
});

test("a number Meta refuses is shown beside the Phone field in Meta's words", async () => {
  await textbox('Phone').fill(REFUSED);
  await button('Create session').click();
  const phone = textbox('Phone');
  await until('the refusal', async () => /131030/.test(await description(phone)));
  assert.match(await description(phone), /Meta refused the template: \(#131030\) Recipient phone number not in allowed list/);
  assert.match(await description(phone), /not on the sandbox number's list of allowed recipients/);
  assert.equal(await phone.getAttribute('aria-invalid'), 'true');
  assert.ok(await page.locator('#session-none').isVisible());
  await noSeriousViolations('sandbox, a refused create');
});

test('a session turns active when the phone taps Activate, its template read', async () => {
  await textbox('Phone').fill(PHONE);
  await button('Create session').click();
  await until('the session', async () => /Pending|Active/.test(await sessionState()));
  assert.equal(await textbox('Phone').getAttribute('aria-invalid'), null);
  assert.equal(await textOf('session-phone'), '+34688246216');
  await until('the activation', async () => (await sessionState()) === 'Active', 60_000);
  await until('the template read', async () => /^Read at /.test(await textOf('session-delivery')));
  assert.match(await textOf('session-expires'), /\(in 6 d 23 h\)|\(in 7 d\)/);
  // An ordinary phone: no phone pane.
  assert.ok(await page.locator('#phone-pane').isHidden());
});

test("a message's ticks reach read, and the phone's reply arrives as a bubble", async () => {
  await until('the open window', async () => /is open/.test(await textOf('window-status')));
  await textbox('Message').fill('Hello from the console');
  await button('Send').click();
  const mine = messages().getByRole('listitem').filter({ hasText: 'Hello from the console' }).first();
  await mine.waitFor();
  await mine.getByRole('img', { name: 'Read' }).waitFor({ timeout: 30_000 });
  await messages().getByRole('listitem').filter({ hasText: 'Echo: Hello from the console' }).waitFor({ timeout: 30_000 });
  // The phone's tap on Activate is in the conversation too.
  await messages().getByRole('listitem').filter({ hasText: TAP }).waitFor();
  assert.equal(await textbox('Message').inputValue(), '');
  assert.match(await description(textbox('Message')), /The customer-service window is open for/);
  await noSeriousViolations('conversation');
  await screenshot('conversation');
});

test('a second phone while one is live is refused beside the Phone field', async () => {
  await textbox('Phone').fill('+44 7400 123456');
  await button('Create session').click();
  const phone = textbox('Phone');
  await until('the refusal', async () => /revoke it/.test(await description(phone)));
  assert.match(await description(phone), /\+34688246216/);
  assert.equal(await sessionState(), 'Active');
  await textbox('Phone').fill('');
});

test('webhooks: a refusal beside its field, then one added with its secret shown once', async () => {
  await page.getByRole('tab', { name: 'Webhooks' }).click();
  await page.getByRole('tabpanel', { name: 'Webhooks' }).waitFor();
  await noSeriousViolations('webhooks, none yet');
  await button('Add webhook').click();
  assert.equal(await button('Add webhook').getAttribute('aria-expanded'), 'true');
  await textbox('Name').fill('Local receiver');
  await page.getByRole('textbox', { name: 'URL' }).fill('ftp://127.0.0.1/');
  await button('Save webhook').click();
  const url = page.getByRole('textbox', { name: 'URL' });
  await until('the refusal', async () => (await url.getAttribute('aria-invalid')) === 'true');
  assert.match(await description(url), /url/i);
  await noSeriousViolations('webhooks, a refused URL');

  await url.fill(RECEIVER_URL);
  await page.getByRole('checkbox', { name: 'webhook.test' }).check();
  await textbox('Secret (optional)').fill(RECEIVER_SECRET);
  await button('Save webhook').click();
  await button('Copy secret').waitFor();
  assert.equal(await textOf('secret-value'), RECEIVER_SECRET);
  await button('Copy secret').click();
  await until('the copy', async () => (await textOf('secret-news')) === 'Copied.');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), RECEIVER_SECRET);
  await button('Done').click();
  assert.ok(await button('Copy secret').isHidden());
  assert.ok(!(await page.content()).includes(RECEIVER_SECRET), 'the secret is shown once, then gone');
  const card = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'Local receiver', exact: true }) });
  await card.waitFor();
  assert.match(await card.innerText(), /http:\/\/127\.0\.0\.1:\d+\//);
});

test('a test event reaches the receiver, is logged with both bodies, and is redelivered', async () => {
  const card = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'Local receiver', exact: true }) });
  await card.getByRole('button', { name: 'Send test event' }).click();
  await until('the outcome', async () => /Delivered: the endpoint answered 200/.test(await textOf('webhooks-news')));
  const rows = page.getByRole('row').filter({ hasText: 'webhook.test' });
  const first = rows.filter({ has: page.getByRole('cell', { name: '1', exact: true }) }).first();
  await first.waitFor();
  assert.match(await first.innerText(), /Local receiver\s+webhook\.test/);
  assert.match(await first.innerText(), /\b200\b/);
  await first.getByText('Show', { exact: true }).click();
  assert.match(await first.locator('pre').first().innerText(), /"event": "webhook\.test"/);
  assert.match(await first.locator('pre').nth(1).innerText(), /verified webhook\.test evt_/);

  await first.getByRole('button', { name: 'Redeliver' }).click();
  await until('the redelivery', async () => /\(attempt 2\): Delivered/.test(await textOf('log-news')));
  await rows.filter({ has: page.getByRole('cell', { name: '2', exact: true }) }).first().waitFor();
  await noSeriousViolations('webhooks and the delivery log');
  await screenshot('webhooks', true);
});

test('the delivery log filters by event and by status', async () => {
  await page.getByRole('combobox', { name: 'Status' }).selectOption('failed');
  await until('no failed attempt', async () => (await page.locator('#log-rows tr').count()) === 0);
  assert.ok(await page.locator('#log-empty').isVisible());
  await page.getByRole('combobox', { name: 'Status' }).selectOption('success');
  await page.getByRole('combobox', { name: 'Event' }).selectOption('webhook.test');
  await until('the test attempts', async () => (await page.locator('#log-rows tr').count()) >= 2);
  const events = await page.locator('#log-rows td .event').allInnerTexts();
  assert.ok(events.every((e) => e === 'webhook.test'), events.join(', '));
  await page.getByRole('combobox', { name: 'Event' }).selectOption('message.read');
  await until('no message.read attempt', async () => (await page.locator('#log-rows tr').count()) === 0);
  await page.getByRole('combobox', { name: 'Event' }).selectOption('');
  await page.getByRole('combobox', { name: 'Status' }).selectOption('');
});

test('a webhook is edited and another deleted, its generated secret shown once', async () => {
  await button('Add webhook').click();
  await textbox('Name').fill('Spare');
  await page.getByRole('textbox', { name: 'URL' }).fill(RECEIVER_URL);
  await button('Save webhook').click();
  await button('Copy secret').waitFor();
  assert.match(await textOf('secret-value'), /^whsec_[A-Za-z0-9+/]{43}=$/);
  await button('Done').click();
  const spare = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'Spare', exact: true }) });
  await spare.getByRole('button', { name: 'Edit' }).click();
  assert.equal(await textbox('Name').inputValue(), 'Spare');
  await page.getByRole('checkbox', { name: 'Active' }).uncheck();
  await button('Save webhook').click();
  await until('the edit', async () => /Off/.test(await spare.innerText()));
  await spare.getByRole('button', { name: 'Delete' }).click();
  await until('the deletion', async () => (await spare.count()) === 0);
  assert.match(await textOf('webhooks-news'), /Webhook Spare deleted/);
});

test('the window closes, and the composer says why', async () => {
  await page.getByRole('tab', { name: 'Sandbox' }).click();
  await until(
    'the closed window',
    async () => /window closed at/.test(await textOf('window-status')),
    WINDOW_MS + 30_000,
  );
  assert.ok(await textbox('Message').isDisabled());
  assert.ok(await button('Send').isDisabled());
  assert.match(await description(textbox('Message')), /The customer-service window closed at .*free-form messages only within 24 hours/);
  await noSeriousViolations('conversation, window closed');
});

test("a virtual phone's session shows the phone pane, with its Activate, Reply and Send reply", async () => {
  await button('Revoke').click();
  await until('the revocation', async () => /revoked/.test(await textOf('session-news')));
  assert.ok(await page.locator('#session-none').isVisible());
  await textbox('Phone').fill(VIRTUAL);
  await button('Create session').click();
  const pane = page.getByRole('region', { name: 'Phone', exact: true });
  await pane.waitFor();
  assert.ok(await page.locator('#phone-pane').isVisible());
  assert.match(await textOf('session-phone'), /\+12025550155 \(virtual phone\)/);
  const screen = pane.getByRole('log', { name: "The phone's messages" });
  await screen.getByRole('listitem').filter({ hasText: 'Tap Activate' }).waitFor();
  await pane.getByRole('button', { name: 'Activate', exact: true }).waitFor();
  await pane.getByRole('textbox', { name: 'Reply', exact: true }).waitFor();
  await pane.getByRole('button', { name: 'Send reply', exact: true }).waitFor();
  // Lines 50-59 tap Activate on delivery by themselves (graph-stub on this branch, the service
  // itself once virtual phones exist): the tap shows on the phone's side.
  await until('the activation', async () => (await sessionState()) === 'Active', 60_000);
  await screen.getByRole('listitem').filter({ hasText: TAP }).waitFor();
  await noSeriousViolations('phone pane');
  await screenshot('phone');
});

test('what a browser receives of the console stays under 100 KB gzip', () => {
  const files = [...received].filter(([url]) => new URL(url).pathname.includes('/console'));
  const raw = files.reduce((sum, [, body]) => sum + body.length, 0);
  const gzip = files.reduce((sum, [, body]) => sum + gzipSync(body, { level: 9 }).length, 0);
  console.log(`the console received: ${files.length} files, ${raw} bytes, ${gzip} bytes gzip`);
  assert.ok(files.some(([url]) => url.endsWith('/app.js')), 'the modules were received');
  assert.ok(gzip < 100 * 1024, `${gzip} bytes gzip`);
});

test('the console works under its own Content-Security-Policy, by keyboard alone', async () => {
  // A context without the bypass: the policy is enforced, and any violation is reported.
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, timezoneId: 'UTC' });
  const strict = await context.newPage();
  const problems = [];
  strict.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(m.text());
  });
  strict.on('pageerror', (e) => problems.push(e.message));
  const response = await strict.goto(CONSOLE_URL);
  assert.match(response.headers()['content-security-policy'], /^default-src 'self'; script-src 'self'; style-src 'self'/);

  // Keyboard alone: Tab to the key, type it, Enter; arrows between the tabs; Tab through a view.
  await strict.keyboard.press('Tab');
  assert.equal(await strict.evaluate(() => document.activeElement.id), 'api-key');
  await strict.keyboard.type(KEY);
  await strict.keyboard.press('Enter');
  await strict.getByRole('tab', { name: 'Sandbox', selected: true }).waitFor();
  assert.equal(await strict.evaluate(() => document.activeElement.getAttribute('role')), 'tab');
  const focusVisible = () =>
    strict.evaluate(() => getComputedStyle(document.activeElement).outlineStyle !== 'none');
  assert.ok(await focusVisible(), 'focus is visible');
  // Up to `count` Tabs, until the page's last control (the next Tab leaves the page); each
  // control by its text, or its id when it has none.
  const reached = async (count) => {
    const names = [];
    for (let i = 0; i < count; i += 1) {
      await strict.keyboard.press('Tab');
      if (await strict.evaluate(() => document.activeElement === document.body)) break;
      names.push(await strict.evaluate(() => document.activeElement.textContent.trim() || document.activeElement.id));
      assert.ok(await focusVisible(), `focus is visible on ${names.at(-1)}`);
    }
    return names;
  };
  // The session and the conversation as the API has them, then Tab from the tabs.
  await strict.getByRole('button', { name: 'Revoke' }).waitFor();
  await strict.getByRole('log', { name: 'Messages' }).getByRole('listitem').first().waitFor();
  const sandbox = await reached(6);
  for (const name of ['Revoke', 'phone', 'Create session']) assert.ok(sandbox.includes(name), sandbox.join(' | '));
  await strict.getByRole('tab', { name: 'Sandbox' }).focus();
  await strict.keyboard.press('ArrowRight');
  await strict.getByRole('tab', { name: 'Webhooks', selected: true }).waitFor();
  assert.ok(await strict.getByRole('tabpanel', { name: 'Webhooks' }).isVisible());
  await strict.getByRole('button', { name: 'Send test event' }).first().waitFor();
  await strict.getByRole('button', { name: 'Redeliver' }).first().waitFor();
  const webhooks = await reached(40);
  for (const name of ['Send test event', 'Edit', 'Delete', 'Add webhook', 'Redeliver']) {
    assert.ok(webhooks.includes(name), webhooks.join(' | '));
  }
  assert.deepEqual(problems, [], 'nothing was refused by the policy, and no script failed');
  await context.close();
});
