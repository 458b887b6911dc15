// The console's rules, as the API's answers read to a person: a session's state by time, the
// 24-hour window, ticks, Meta's errors in words, what a message bubble shows, the pages of the
// conversation, virtual phones, custom headers. Pure: no DOM, no fetch, no clock of its own, so
// `console/test/model.test.js` runs it in Node.

/** The events a webhook can subscribe to (openapi.yaml, `WebhookEvent`). */
export const WEBHOOK_EVENTS = [
  'message.received',
  'message.sent',
  'message.delivered',
  'message.read',
  'message.failed',
  'whatsapp.sandbox.session.activated',
  'whatsapp.sandbox.session.ended',
  'webhook.test',
];

/** What the phone pane's Activate button says, as the activation template's quick reply does. */
export const ACTIVATE = 'Activate';

/** `pending`, `active` or `expired`: the API stops listing a session once it expires, so a
 * session the page still shows past its `expiresAt` is expired by time. */
export function sessionState(session, now) {
  if (new Date(session.expiresAt).getTime() <= now) return 'expired';
  return session.status === 'active' ? 'active' : 'pending';
}

/** Why the session the page showed (`shown`) is gone from the list (`listed`: the caller's
 * live session, or `null`), in words; `null` when it is still listed or reached its expiry
 * (the page keeps showing it, as expired). Only a revoke elsewhere or the phone's STOP end
 * a session earlier, and the list says neither. */
export function endedWords(shown, listed, now) {
  if (!shown || listed || sessionState(shown, now) === 'expired') return null;
  return `The session for +${shown.phoneE164} ended: the phone wrote STOP, or the session was revoked elsewhere.`;
}

/**
 * Whether a free-form message may be sent now, and why not: `none` (no session), `pending`,
 * `expired`, `never` (active, but the phone never wrote), `closed` (the window ran out at
 * `until`) or `open` (until `until`).
 */
export function windowState(session, windowExpiresAt, now) {
  if (!session) return { open: false, reason: 'none' };
  const state = sessionState(session, now);
  if (state !== 'active') return { open: false, reason: state };
  if (!windowExpiresAt) return { open: false, reason: 'never' };
  const until = new Date(windowExpiresAt).getTime();
  return until > now ? { open: true, reason: 'open', until } : { open: false, reason: 'closed', until };
}

/** An outbound message's status as WhatsApp draws it: how many ticks, and their name. */
export const TICKS = {
  accepted: { ticks: 0, label: 'Not sent yet' },
  sent: { ticks: 1, label: 'Sent' },
  delivered: { ticks: 2, label: 'Delivered' },
  read: { ticks: 2, label: 'Read' },
  failed: { ticks: 0, label: 'Failed' },
};

/** Meta's error codes a sandbox user meets, in words (whatsapp-cloud-api.md, "Error codes"). */
const META_ERRORS = {
  131021: 'The phone is the sandbox number itself.',
  131026:
    'The phone cannot receive it: it may not be on WhatsApp, may run an old version, or has not accepted the terms.',
  131030: "The phone is not on the sandbox number's list of allowed recipients.",
  131047: 'More than 24 hours passed since the phone last wrote, so only templates can be sent.',
  131049: 'Meta held it back to keep engagement healthy; try again in a day.',
  131050: 'The phone stopped marketing messages from this number.',
  131051: 'WhatsApp does not support this kind of message.',
  132000: "The template's parameters do not match it.",
  132001: 'The template does not exist in this language, or is not approved.',
  132015: 'The template is paused for low quality.',
  132016: 'The template is disabled for good.',
};

/** Meta's error object (a failed status's, or a refused send's `platformError`) in words. */
export function metaErrorInWords(error) {
  if (!error || typeof error !== 'object') return 'Meta gave no reason.';
  const code = error.code ?? '';
  const said = String(error.title || error.message || 'Meta refused it').replace(/\.$/, '');
  const details = error.details || error.error_data?.details;
  const parts = [`${said}${code !== '' ? ` (${code})` : ''}.`];
  // Meta often repeats the title as the details ("Message Undeliverable."): said once.
  if (details && String(details).replace(/\.$/, '').toLowerCase() !== said.toLowerCase()) parts.push(String(details));
  if (META_ERRORS[code]) parts.push(META_ERRORS[code]);
  return parts.join(' ');
}

/** The activation template's delivery (the session's `delivery`) in words. */
export function deliveryWords(delivery) {
  if (!delivery) return 'Sent to Meta; no delivery report yet';
  const label = TICKS[delivery.status]?.label ?? delivery.status;
  return delivery.status === 'failed' ? `Failed: ${metaErrorInWords(delivery.error)}` : label;
}

/** Whether a number (digits, no `+`) is a virtual phone, `+1 NXX 555 0100` to `0199`, which
 * the service plays itself. */
export function isVirtualPhone(digits) {
  return /^1[2-9][0-9]{2}55501[0-9]{2}$/.test(digits ?? '');
}

/** A stable key for a message (its id; the API gives every message one, this is the fallback). */
export function messageKey(m) {
  return m.id ?? `${m.createdAt}|${m.direction}|${m.type}|${JSON.stringify(m.text ?? m.button ?? m.interactive ?? '')}`;
}

/**
 * What a bubble shows: `text` (may be empty), `caption` (a template's or an unusual type's
 * name), `choices` (reply buttons, `{id, title}`), `list` (a list's button text and its rows),
 * `status` and `failure` for outbound messages.
 */
export function bubble(m) {
  const out = {
    key: messageKey(m),
    outbound: m.direction === 'outbound',
    createdAt: m.createdAt,
    text: '',
    caption: '',
    choices: [],
    list: null,
    status: m.direction === 'outbound' ? (m.status ?? 'accepted') : null,
    failure: m.status === 'failed' ? metaErrorInWords(m.error) : null,
  };
  const i = m.interactive;
  if (m.text && typeof m.text.body === 'string') {
    out.text = m.text.body;
  } else if (m.button) {
    out.text = m.button.text ?? m.button.payload ?? '';
  } else if (i && (i.button_reply || i.list_reply)) {
    out.text = (i.button_reply ?? i.list_reply).title ?? '';
  } else if (i) {
    out.text = [i.header?.text, i.body?.text, i.footer?.text].filter(Boolean).join('\n');
    if (i.type === 'button') {
      out.choices = (i.action?.buttons ?? [])
        .map((b) => b.reply ?? b)
        .filter((r) => r && r.id !== undefined)
        .map((r) => ({ id: String(r.id), title: String(r.title ?? r.id) }));
    } else if (i.type === 'list') {
      out.list = {
        button: String(i.action?.button ?? 'Options'),
        rows: (i.action?.sections ?? []).flatMap((s) =>
          (s.rows ?? []).map((r) => ({ id: String(r.id), title: String(r.title ?? r.id), description: r.description ?? '' })),
        ),
      };
    }
  } else if (m.template) {
    const language = typeof m.template.language === 'object' ? m.template.language?.code : m.template.language;
    out.caption = `Template ${m.template.name ?? ''}${language ? ` (${language})` : ''}`.trim();
  } else if (m.reaction) {
    out.text = m.reaction.emoji ?? '';
    out.caption = 'Reaction';
  } else {
    out.caption = `A ${m.type} message`;
  }
  return out;
}

/**
 * The conversation, newest first, from pages newest first (the polled first page, then what
 * was known or loaded before): each message once, as its newest copy says (a status only
 * moves forward).
 */
export function mergePages(newest, olderPages = []) {
  const seen = new Set();
  const all = [];
  for (const m of [...newest, ...olderPages.flat()]) {
    const key = messageKey(m);
    if (seen.has(key)) continue;
    seen.add(key);
    all.push(m);
  }
  return all;
}

/** Custom headers as a person types them, one `Name: value` a line, into the API's object;
 * `{error}` names the first line that is not one. */
export function parseHeaders(text) {
  const headers = {};
  const lines = (text ?? '').split('\n');
  for (const [n, raw] of lines.entries()) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf(':');
    if (at <= 0) return { error: `Line ${n + 1} is not "Name: value".` };
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return { headers };
}

/** The API's custom headers, one `Name: value` a line. */
export function formatHeaders(headers) {
  return Object.entries(headers ?? {})
    .map(([name, value]) => `${name}: ${value}`)
    .join('\n');
}
