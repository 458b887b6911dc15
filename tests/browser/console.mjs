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
// The loop runs on virtual phones (+1 NXX 555 0100-0199, which the service plays itself, README
// "Virtual phones"): the phone pane taps Activate, types replies and taps buttons through
// `/reply`. graph-stub, make dev's stand-in for Meta, plays only the ordinary number of the last
// step, whose session has no phone pane.

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

/** A reachable virtual phone (lines 00-49): it reports each message sent, delivered and read,
 * and writes only when told, so the phone pane does its part. */
const VIRTUAL = '+1 202 555 0142';
/** A virtual phone Meta refuses (lines 70-79): error 131030, as for a number off the allowed list. */
const REFUSED = '+1 202 555 0172';
/** A virtual phone that answers its first template with STOP (lines 80-89). */
const STOPS = '+1 202 555 0183';
/** An ordinary number: graph-stub plays it, and its session has no phone pane. */
const ORDINARY = '+34 688 246 216';
const KEPT_AS = 'sandbox-console.api-key';
/** The phone's reply, typed in the pane. */
const REPLY = 'Thanks! When will it arrive?';
/** An interactive message with two reply buttons, sent through the API as a client sends it. */
const QUESTION = {
  type: 'interactive',
  interactive: {
    type: 'button',
    body: { text: 'Tomorrow between 9:00 and 12:00. Does that suit you?' },
    action: {
      buttons: [
        { type: 'reply', reply: { id: 'slot-yes', title: 'Yes, that suits me' } },
        { type: 'reply', reply: { id: 'slot-other', title: 'Another time' } },
      ],
    },
  },
};
/** Where the API is: the console's page is `<api>/console`. */
const API = CONSOLE_URL.replace(/\/console\/?$/, '');

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

/** A picture for the README, only when asked for (the pointer moved off the page, so no
 * button shows as hovered). */
async function screenshot(name, fullPage = false) {
  if (!UPDATE_SCREENSHOTS) return;
  await page.mouse.move(0, 0);
  await page.screenshot({ path: `${SCREENSHOTS_DIR}/${name}.png`, fullPage });
}

const button = (name) => page.getByRole('button', { name, exact: true });
const textbox = (name) => page.getByRole('textbox', { name, exact: true });
const messages = () => page.getByRole('log', { name: 'Messages', exact: true });
const sessionState = () => textOf('session-state');
/** The phone pane, and its controls and log, found as a screen reader finds them. */
const pane = () => page.getByRole('region', { name: 'Phone', exact: true });
const inPane = (role, name) => pane().getByRole(role, { name, exact: true });
const screen = () => pane().getByRole('log', { name: "The phone's messages", exact: true });
/** The bubble in `log` that reads `text` and its time, nothing else (not a message that
 * merely contains it, such as an interactive message with a button of that title). */
const bubbleOf = (log, text) => {
  const literal = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return log.getByRole('listitem').filter({ hasText: new RegExp(`^${literal}\\s*\\d\\d:\\d\\d$`) });
};

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
  // While create runs, the list shows the pending session it wrote, until Meta's refusal rolls
  // it back. A poll can land in that moment: here one always does (its answer is what the API
  // gives then), and the console must not show that session, nor say later that it ended.
  const sessions = `${API}/v1/whatsapp/sandbox/sessions`;
  let creating = false;
  let polledMeanwhile = false;
  await page.route(sessions, async (route) => {
    if (route.request().method() === 'POST') {
      creating = true;
      const refusal = await route.fetch();
      await until('a poll during the create', async () => polledMeanwhile, 10_000);
      creating = false;
      await route.fulfill({ response: refusal });
    } else if (creating && !polledMeanwhile) {
      const listed = await (await route.fetch()).json();
      const now = Date.now();
      const writing = {
        id: 'wss_0000000000000000000000',
        phoneE164: '12025550172',
        status: 'pending',
        expiresAt: new Date(now + 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z'),
        activatedAt: null,
        createdAt: new Date(now).toISOString().replace(/\.\d+Z$/, 'Z'),
      };
      await route.fulfill({ json: { ...listed, sessions: [writing] } });
      polledMeanwhile = true;
    } else {
      await route.fallback();
    }
  });
  await textbox('Phone').fill(REFUSED);
  await button('Create session').click();
  const phone = textbox('Phone');
  await until('the refusal', async () => /131030/.test(await description(phone)));
  await page.unroute(sessions);
  assert.match(await description(phone), /Meta refused the template: \(#131030\) Recipient phone number not in allowed list/);
  assert.match(await description(phone), /not on the sandbox number's list of allowed recipients/);
  assert.equal(await phone.getAttribute('aria-invalid'), 'true');
  // A poll as the API answers now, taken in by the time the next one is asked for (the console
  // polls one at a time): still no session, and no news of one ending.
  for (let polls = 0; polls < 2; polls += 1) {
    await page.waitForRequest((r) => r.url() === sessions && r.method() === 'GET');
  }
  assert.ok(await page.locator('#session-none').isVisible());
  assert.ok(await pane().isHidden());
  assert.equal(await textOf('session-news'), '');
  await noSeriousViolations('sandbox, a refused create');
});

test('a phone that writes STOP ends its session, said in words, and a new one for it is refused', async () => {
  await textbox('Phone').fill(STOPS);
  await button('Create session').click();
  await until('the session', async () => /\+12025550183/.test(await textOf('session-phone')));
  assert.equal(await textbox('Phone').getAttribute('aria-invalid'), null);
  // The phone answers its template with STOP: the API stops listing the session.
  await until('the end', async () => /ended: the phone wrote STOP/.test(await textOf('session-news')));
  assert.equal(await textOf('session-news'), 'The session for +12025550183 ended: the phone wrote STOP, or the session was revoked elsewhere.');
  assert.ok(await page.locator('#session-none').isVisible());
  assert.ok(await pane().isHidden());
  await textbox('Phone').fill(STOPS);
  await button('Create session').click();
  const phone = textbox('Phone');
  await until('the refusal', async () => /opted out/.test(await description(phone)));
  assert.match(await description(phone), /\+12025550183 opted out of sandbox messages/);
  await textbox('Phone').fill('');
});

test("a virtual phone's session shows the phone pane: the template with its Activate button", async () => {
  await textbox('Phone').fill(VIRTUAL);
  await button('Create session').click();
  await pane().waitFor();
  assert.equal(await textbox('Phone').getAttribute('aria-invalid'), null);
  assert.equal(await textOf('session-phone'), '+12025550142 (virtual phone)');
  assert.match(await sessionState(), /^Pending/);
  await screen().getByRole('listitem').filter({ hasText: 'Tap Activate' }).waitFor();
  await inPane('button', 'Activate').waitFor();
  await inPane('textbox', 'Reply').waitFor();
  await inPane('button', 'Send reply').waitFor();
  // Lines 00-49 do nothing until told: the session waits for the tap.
  assert.match(await sessionState(), /^Pending/);
  assert.ok(await textbox('Message').isDisabled());
  await noSeriousViolations('phone pane, pending');
});

test('tapping Activate in the phone pane turns the session active, its template read', async () => {
  await inPane('button', 'Activate').click();
  await until('the activation', async () => (await sessionState()) === 'Active');
  await until('the template read', async () => /^Read at /.test(await textOf('session-delivery')));
  assert.match(await textOf('session-expires'), /\(in 6 d 23 h\)|\(in 7 d\)/);
  // The tap is the phone's message: on the left of the conversation, on the right of the phone.
  await bubbleOf(messages(), 'Activate').waitFor();
  await bubbleOf(screen(), 'Activate').waitFor();
  assert.equal(await inPane('textbox', 'Reply').getAttribute('aria-invalid'), null);
  await until('the open window', async () => /is open/.test(await textOf('window-status')));
  await noSeriousViolations('phone pane, active');
  await screenshot('phone');
});

test("a message's ticks reach read on the virtual phone", async () => {
  await textbox('Message').fill('Your order shipped!');
  await button('Send').click();
  const mine = messages().getByRole('listitem').filter({ hasText: 'Your order shipped!' }).first();
  await mine.waitFor();
  await mine.getByRole('img', { name: 'Read' }).waitFor();
  assert.equal(await textbox('Message').inputValue(), '');
  assert.match(await description(textbox('Message')), /The customer-service window is open for/);
  // The phone shows it too, without the business's ticks.
  await bubbleOf(screen(), 'Your order shipped!').waitFor();
});

test("a reply typed in the phone pane arrives as a bubble in both logs", async () => {
  await inPane('textbox', 'Reply').fill(REPLY);
  await inPane('button', 'Send reply').click();
  await bubbleOf(messages(), REPLY).waitFor();
  await bubbleOf(screen(), REPLY).waitFor();
  assert.equal(await inPane('textbox', 'Reply').inputValue(), '');
  assert.equal(await inPane('textbox', 'Reply').getAttribute('aria-invalid'), null);
});

test("an interactive message's button, tapped in the phone pane, comes back as the phone's answer", async () => {
  // Sent as any client sends it: the console is not the only client of the API.
  const sent = await fetch(`${API}/v1/whatsapp/sandbox/messages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(QUESTION),
  });
  assert.equal(sent.status, 200, await sent.text());
  const [yes] = QUESTION.interactive.action.buttons.map((b) => b.reply.title);
  const asked = screen().getByRole('listitem').filter({ hasText: 'Does that suit you?' });
  await asked.getByRole('button', { name: yes, exact: true }).waitFor();
  await asked.getByRole('button', { name: 'Another time', exact: true }).waitFor();
  await noSeriousViolations('phone pane, an interactive message');
  await asked.getByRole('button', { name: yes, exact: true }).click();
  // Its title, as the phone's own message: on the left of the conversation.
  const answer = bubbleOf(messages(), yes);
  await answer.waitFor();
  assert.match(await answer.getAttribute('class'), /\btheirs\b/);
  await bubbleOf(screen(), yes).waitFor();
  await messages().getByRole('listitem').filter({ hasText: 'Does that suit you?' }).getByRole('img', { name: 'Read' }).waitFor();
  await noSeriousViolations('conversation');
  await screenshot('conversation');
});

test('a second phone while one is live is refused beside the Phone field', async () => {
  await textbox('Phone').fill('+44 7400 123456');
  await button('Create session').click();
  const phone = textbox('Phone');
  await until('the refusal', async () => /revoke it/.test(await description(phone)));
  assert.match(await description(phone), /\+12025550142/);
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
  // The session, the conversation and the phone pane as the API has them, then Tab from the
  // tabs through the session card and on through the phone's buttons and its Reply box.
  await strict.getByRole('button', { name: 'Revoke' }).waitFor();
  await strict.getByRole('log', { name: 'Messages', exact: true }).getByRole('listitem').first().waitFor();
  const phone = strict.getByRole('region', { name: 'Phone', exact: true });
  await phone.getByRole('button', { name: 'Activate', exact: true }).waitFor();
  const sandbox = await reached(40);
  for (const name of ['Revoke', 'phone', 'Create session', 'Activate', 'Another time', 'reply-text', 'Send reply']) {
    assert.ok(sandbox.includes(name), sandbox.join(' | '));
  }
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

test("an ordinary phone's session has no phone pane", async () => {
  await button('Revoke').click();
  await until('the revocation', async () => /revoked/.test(await textOf('session-news')));
  assert.ok(await page.locator('#session-none').isVisible());
  assert.ok(await pane().isHidden());
  await textbox('Phone').fill(ORDINARY);
  await button('Create session').click();
  await until('the session', async () => (await textOf('session-phone')) === '+34688246216');
  await until('the activation by graph-stub', async () => (await sessionState()) === 'Active', 60_000);
  assert.ok(await pane().isHidden());
  assert.ok(await page.locator('#phone-pane').isHidden());
});
