// The console: sign in with an API key, then the Sandbox tab (the session, the conversation,
// the phone pane of a virtual phone) and the Webhooks tab, all over the public API (api.js),
// as any client calls it. The key lives in sessionStorage only: gone with the tab, sent only as
// a Bearer token, never put in a URL or a log.

import { Api, apiBase } from './api.js';
import { conversationView } from './conversation.js';
import { byId, fieldError, once, say } from './dom.js';
import { endedWords, mergePages, sessionState } from './model.js';
import { phonePane } from './phone.js';
import { sessionCard } from './session.js';
import { tabs } from './tabs.js';
import { webhooksView } from './webhooks.js';

/** Where the key is kept, in this tab's sessionStorage. */
const KEY = 'sandbox-console.api-key';
/** How often the Sandbox tab asks for the session and the conversation's first page. */
const POLL_MS = 2500;
/** How often the Webhooks tab asks for its list and log page (the log route reads the whole
 * 30-day log to count it, so less often). */
const WEBHOOKS_POLL_MS = 10000;
/** Messages per page: what a poll costs is one such page, never the history. */
const PAGE = 20;

/** The console's state, and what every view calls. */
const app = {
  api: null,
  /** The caller's live session; past its expiry it stays here, shown as expired. */
  session: null,
  /** Every message seen, newest first, and where the next older page starts. */
  conversation: { messages: [], olderCursor: null, windowExpiresAt: null, started: false },
  tab: 'tab-sandbox',
  /** Creates and revokes running, and how many have started or finished (`changeSession`). */
  changes: { running: 0, count: 0 },

  setSession(session) {
    this.session = session;
    this.render();
  },

  /** Runs a create or a revoke (`call`): a session list asked for before it finished is older
   * than its answer, and one asked for while it runs may show what it is still doing (a
   * pending session that a refused create then rolls back), so `refreshSession` drops both. */
  async changeSession(call) {
    this.changes.running += 1;
    this.changes.count += 1;
    try {
      return await call();
    } finally {
      this.changes.running -= 1;
      this.changes.count += 1;
    }
  },

  async refreshSession() {
    const asked = this.changes.count;
    const { sessions, sandboxNumber } = await this.api.sessions();
    byId('sandbox-number').textContent = `Sandbox number ${sandboxNumber}`;
    if (this.changes.running || this.changes.count !== asked) return;
    const live = sessions[0] ?? null;
    const now = Date.now();
    const ended = endedWords(this.session, live, now);
    if (ended) say('session-news', ended);
    const expired = !live && this.session && sessionState(this.session, now) === 'expired';
    this.session = live ?? (expired ? this.session : null);
    this.render();
  },

  /** The conversation's first page, merged over what is known (a status moves forward). */
  async refreshMessages() {
    const page = await this.api.messages(PAGE);
    const c = this.conversation;
    c.messages = mergePages(page.messages, [c.messages]);
    c.windowExpiresAt = page.windowExpiresAt;
    if (!c.started) {
      c.olderCursor = page.nextCursor;
      c.started = true;
    }
    this.render();
  },

  async loadOlder() {
    const c = this.conversation;
    if (!c.olderCursor) return;
    const page = await this.api.messages(PAGE, c.olderCursor);
    c.messages = mergePages(c.messages, [page.messages]);
    c.olderCursor = page.nextCursor;
    this.render();
  },

  /** A refusal: a 401 (the key was disabled meanwhile) signs out, saying so; anything else is
   * `show`n where it belongs. */
  refused(error, show) {
    if (error.status === 401) signOut('This API key is no longer accepted (disabled or removed): sign in again.');
    else show();
  },

  render() {
    if (!this.api) return;
    const now = Date.now();
    for (const view of views) view(now);
  },
};

const views = [sessionCard(app), conversationView(app), phonePane(app)];
const refreshWebhooks = webhooksView(app);

const selectTab = tabs(document.querySelector('[role="tablist"]'), (id) => {
  app.tab = id;
  poll(true);
});

let polling = false;
let webhooksPolledAt = 0;
/** Refreshes the open tab (`now`: whatever the time since the last refresh). */
async function poll(now = false) {
  if (!app.api || polling || document.hidden) return;
  polling = true;
  try {
    if (app.tab === 'tab-sandbox') {
      await Promise.all([app.refreshSession(), app.refreshMessages()]);
    } else if (now || Date.now() - webhooksPolledAt >= WEBHOOKS_POLL_MS) {
      webhooksPolledAt = Date.now();
      await refreshWebhooks();
    }
  } catch (error) {
    // A poll that failed says nothing; the next one tries again.
    app.refused(error, () => {});
  } finally {
    polling = false;
  }
}

/** Checks `key` with the cheapest authenticated call (the session list), then opens the
 * console; a wrong key is said in words. `restoring`: the key kept from before a reload. */
async function signIn(key, restoring) {
  const input = byId('api-key');
  fieldError(input, '');
  if (!key) {
    fieldError(input, 'Enter your API key (it starts with wsk_).');
    return;
  }
  const api = new Api(apiBase(location.pathname), key);
  try {
    await api.sessions();
  } catch (error) {
    if (restoring) sessionStorage.removeItem(KEY);
    fieldError(
      input,
      error.status === 401
        ? 'This API key was not accepted: it is unknown or disabled. Check that you copied all of it (keys start with wsk_).'
        : error.message,
    );
    return;
  }
  sessionStorage.setItem(KEY, key);
  input.value = '';
  app.api = api;
  byId('sign-in-view').hidden = true;
  byId('app-view').hidden = false;
  byId('sign-out').hidden = false;
  byId('sandbox-number').hidden = false;
  app.render();
  selectTab('tab-sandbox');
  if (!restoring) byId('tab-sandbox').focus();
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  app.api = null;
  app.session = null;
  app.conversation = { messages: [], olderCursor: null, windowExpiresAt: null, started: false };
  byId('app-view').hidden = true;
  byId('sign-out').hidden = true;
  byId('sandbox-number').hidden = true;
  byId('sign-in-view').hidden = false;
  const input = byId('api-key');
  fieldError(input, message);
  input.focus();
}

const form = byId('sign-in');
form.addEventListener('submit', (event) => {
  event.preventDefault();
  once(form, () => signIn(byId('api-key').value.trim(), false));
});
byId('sign-out').addEventListener('click', () => signOut(''));
document.addEventListener('visibilitychange', () => poll(true));
setInterval(poll, POLL_MS);
// Times on the page (the window's countdown, expiry) move on between polls.
setInterval(() => app.render(), 1000);

const kept = sessionStorage.getItem(KEY);
if (kept) signIn(kept, true);
