// Webhooks: the caller's endpoints (list, add, edit, delete), the secret shown once when one is
// added, "Send test event", and the delivery log (each attempt's event, status code, response
// time, error, the body sent and the body answered), filtered by event and status, with
// "Redeliver". Every refusal is the API's message beside the field it names.

import { byId, fieldError, h, keyed, once, say } from './dom.js';
import { dateTime, pretty } from './format.js';
import { WEBHOOK_EVENTS, formatHeaders, parseHeaders } from './model.js';

/** Log entries per page. */
const PAGE = 10;

/** The form's fields, by the `param` the API names them with. */
const FIELDS = {
  name: 'webhook-name',
  url: 'webhook-url',
  events: 'webhook-events',
  secret: 'webhook-secret',
  customHeaders: 'webhook-headers',
  isActive: 'webhook-active',
};

/** Wires the Webhooks tab to the console (`app`, app.js); returns its `refresh()`. */
export function webhooksView(app) {
  // `asked` numbers the log requests, so an answer to an older one (filters changed meanwhile)
  // is dropped.
  const state = { webhooks: [], editing: null, skip: 0, asked: 0 };
  const editor = byId('webhook-editor');
  const form = byId('webhook-form');
  const add = byId('add-webhook');
  const boxes = WEBHOOK_EVENTS.map((event, i) =>
    h('input', { type: 'checkbox', id: `webhook-event-${i}`, value: event }),
  );
  byId('webhook-event-boxes').append(
    ...boxes.map((box) => h('div', { class: 'check' }, box, h('label', { for: box.id }, box.value))),
  );
  byId('log-event').append(...WEBHOOK_EVENTS.map((event) => h('option', { value: event }, event)));

  const clearErrors = () => {
    for (const id of Object.values(FIELDS)) fieldError(byId(id), '');
    say('webhook-form-error', '');
  };

  /** Opens the editor for `webhook` (or a new one), focused on its first field. */
  const open = (webhook) => {
    state.editing = webhook;
    clearErrors();
    byId('secret-once').hidden = true;
    byId('webhook-editor-title').textContent = webhook ? `Edit webhook ${webhook.name}` : 'Add webhook';
    byId('webhook-name').value = webhook?.name ?? '';
    byId('webhook-url').value = webhook?.url ?? '';
    byId('webhook-secret').value = '';
    byId('webhook-headers').value = formatHeaders(webhook?.customHeaders);
    byId('webhook-active').checked = webhook?.isActive ?? true;
    const events = webhook?.events ?? WEBHOOK_EVENTS.filter((e) => e !== 'webhook.test');
    for (const box of boxes) box.checked = events.includes(box.value);
    editor.hidden = false;
    add.setAttribute('aria-expanded', 'true');
    byId('webhook-name').focus();
  };
  const close = () => {
    editor.hidden = true;
    add.setAttribute('aria-expanded', 'false');
    state.editing = null;
  };

  add.addEventListener('click', () => (editor.hidden ? open(null) : close()));
  byId('webhook-cancel').addEventListener('click', () => {
    close();
    add.focus();
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    once(form, async () => {
      clearErrors();
      const headers = parseHeaders(byId('webhook-headers').value);
      if (headers.error) {
        fieldError(byId('webhook-headers'), headers.error);
        return;
      }
      const fields = {
        name: byId('webhook-name').value,
        url: byId('webhook-url').value,
        events: boxes.filter((b) => b.checked).map((b) => b.value),
        customHeaders: headers.headers,
        isActive: byId('webhook-active').checked,
      };
      const secret = byId('webhook-secret').value;
      if (secret) fields.secret = secret;
      const editing = state.editing;
      try {
        const answer = editing
          ? await app.api.updateWebhook(editing._id, fields)
          : await app.api.createWebhook(fields);
        close();
        await refreshList();
        if (!editing) {
          // The one answer that carries the secret: shown now, never again.
          byId('secret-value').textContent = answer.webhook.secret;
          say('secret-news', '');
          byId('secret-once').hidden = false;
          byId('copy-secret').focus();
        } else {
          add.focus();
        }
        say('webhooks-news', editing ? `Webhook ${answer.webhook.name} saved.` : `Webhook ${answer.webhook.name} added.`);
      } catch (error) {
        app.refused(error, () => {
          const field = FIELDS[error.param];
          if (field) fieldError(byId(field), error.message);
          else say('webhook-form-error', error.message);
        });
      }
    });
  });

  byId('copy-secret').addEventListener('click', async () => {
    const secret = byId('secret-value').textContent;
    try {
      await navigator.clipboard.writeText(secret);
      say('secret-news', 'Copied.');
    } catch {
      getSelection()?.selectAllChildren(byId('secret-value'));
      say('secret-news', 'The browser did not allow copying: the secret is selected, press Ctrl+C (or ⌘C).');
    }
  });
  byId('secret-done').addEventListener('click', () => {
    byId('secret-value').textContent = '';
    byId('secret-once').hidden = true;
    add.focus();
  });

  /** One webhook's card: what it is, and its buttons. */
  const card = (webhook) => {
    const title = `webhook-${webhook._id}-title`;
    const test = h('button', { type: 'button', 'aria-describedby': title }, 'Send test event');
    const edit = h('button', { type: 'button', class: 'secondary', 'aria-describedby': title }, 'Edit');
    const remove = h('button', { type: 'button', class: 'danger', 'aria-describedby': title }, 'Delete');
    test.addEventListener('click', () =>
      once(test, async () => {
        say('webhooks-error', '');
        try {
          const outcome = await app.api.testWebhook(webhook._id);
          say('webhooks-news', `Test event to ${webhook.name}: ${outcome.message}`);
          state.skip = 0;
          // Its last success and failures changed too.
          await Promise.all([refreshList(), refreshLog()]);
        } catch (error) {
          app.refused(error, () => say('webhooks-error', error.message));
        }
      }),
    );
    edit.addEventListener('click', () => open(state.webhooks.find((w) => w._id === webhook._id) ?? webhook));
    remove.addEventListener('click', () =>
      once(remove, async () => {
        say('webhooks-error', '');
        try {
          await app.api.deleteWebhook(webhook._id);
          say('webhooks-news', `Webhook ${webhook.name} deleted.`);
          await refreshList();
          add.focus();
        } catch (error) {
          app.refused(error, () => say('webhooks-error', error.message));
        }
      }),
    );
    return h(
      'li',
      { class: 'webhook' },
      h('h3', { id: title }, webhook.name),
      h('dl', { class: 'facts' }),
      h('div', { class: 'actions' }, test, edit, remove),
    );
  };
  const describe = (node, webhook) => {
    const fact = (name, value) => [h('dt', {}, name), h('dd', {}, value)];
    node.querySelector('h3').textContent = webhook.name;
    node.querySelector('dl').replaceChildren(
      ...fact('URL', webhook.url),
      ...fact('Events', webhook.events.join(', ')),
      ...fact('State', webhook.isActive ? 'Active' : 'Off (turned off: edit it to turn it on again)'),
      ...fact('Last success', webhook.lastFiredAt ? dateTime(webhook.lastFiredAt) : 'None yet'),
      ...fact('Failures in a row', String(webhook.failureCount)),
    );
  };

  const refreshList = async () => {
    const { webhooks } = await app.api.webhooks();
    state.webhooks = webhooks;
    byId('webhooks-none').hidden = webhooks.length > 0;
    keyed(byId('webhook-list'), webhooks, (w) => w._id, (w) => {
      const node = card(w);
      describe(node, w);
      return node;
    }, describe);
  };

  /** One log entry's row (an attempt is logged once, so a row never changes). */
  const row = (entry) => {
    const what = `log-${entry.eventId}-${entry.attemptNumber}-${entry.webhookId}`;
    const redeliver = h('button', { type: 'button', class: 'small', 'aria-describedby': what }, 'Redeliver');
    redeliver.addEventListener('click', () =>
      once(redeliver, async () => {
        say('log-error', '');
        try {
          const outcome = await app.api.redeliver(entry.webhookId, entry.eventId);
          say('log-news', `Redelivered ${entry.event} to ${entry.webhookName} (attempt ${outcome.attemptNumber}): ${outcome.message}`);
          state.skip = 0;
          await Promise.all([refreshList(), refreshLog()]);
        } catch (error) {
          app.refused(error, () => say('log-error', error.message));
        }
      }),
    );
    const ok = entry.status === 'success';
    return h(
      'tr',
      { class: ok ? 'ok' : 'failed' },
      h('td', {}, h('time', { datetime: entry.createdAt }, dateTime(entry.createdAt))),
      h('td', {}, entry.webhookName),
      h('td', { id: what }, h('span', { class: 'event' }, entry.event), h('span', { class: 'visually-hidden' }, ` ${entry.eventId} to ${entry.webhookName}, attempt ${entry.attemptNumber}`)),
      h('td', {}, h('span', { class: `code ${ok ? 'ok' : 'failed'}` }, entry.statusCode === undefined ? 'None' : String(entry.statusCode))),
      h('td', {}, `${entry.responseTime} ms`),
      h('td', {}, String(entry.attemptNumber)),
      h('td', {}, entry.errorMessage ?? ''),
      h(
        'td',
        {},
        h(
          'details',
          {},
          h('summary', {}, 'Show'),
          h('p', { class: 'label' }, 'Sent'),
          h('pre', { tabindex: '0' }, pretty(entry.requestPayload)),
          h('p', { class: 'label' }, 'Answered'),
          h('pre', { tabindex: '0' }, entry.responseBody ? pretty(entry.responseBody) : '(empty)'),
        ),
      ),
      h('td', {}, redeliver),
    );
  };

  const refreshLog = async () => {
    const query = {
      event: byId('log-event').value,
      status: byId('log-status').value,
      limit: PAGE,
      skip: state.skip,
    };
    const asked = ++state.asked;
    const { logs, pagination } = await app.api.logs(query);
    if (asked !== state.asked) return;
    keyed(byId('log-rows'), logs, (e) => `${e.webhookId}|${e.eventId}|${e.attemptNumber}|${e.createdAt}`, row, () => {});
    byId('log-empty').hidden = logs.length > 0;
    const page = Math.floor(state.skip / PAGE) + 1;
    byId('log-page').textContent = pagination.total ? `Page ${page} of ${pagination.pages} (${pagination.total} attempts)` : '';
    byId('log-newer').hidden = state.skip === 0;
    byId('log-older').hidden = !pagination.hasMore;
  };

  const filter = async () => {
    say('log-error', '');
    state.skip = 0;
    try {
      await refreshLog();
    } catch (error) {
      app.refused(error, () => say('log-error', error.message));
    }
  };
  byId('log-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    filter();
  });
  byId('log-event').addEventListener('change', filter);
  byId('log-status').addEventListener('change', filter);
  for (const [id, step] of [['log-newer', -PAGE], ['log-older', PAGE]]) {
    byId(id).addEventListener('click', () =>
      once(byId(id), async () => {
        state.skip = Math.max(0, state.skip + step);
        try {
          await refreshLog();
        } catch (error) {
          app.refused(error, () => say('log-error', error.message));
        }
      }),
    );
  }

  /** The list and the log page as they are now. */
  return async function refresh() {
    try {
      await Promise.all([refreshList(), refreshLog()]);
    } catch (error) {
      app.refused(error, () => say('webhooks-error', error.message));
    }
  };
}
