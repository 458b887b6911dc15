// The session card: the caller's live session (phone, status, expiry, how the activation
// template's delivery went), creating one and revoking it. Every refusal is the API's own
// message, beside the Phone field it concerns.

import { byId, fieldError, once, say } from './dom.js';
import { dateTime, phone, relative } from './format.js';
import { deliveryWords, isVirtualPhone, metaErrorInWords, sessionState } from './model.js';

const STATE_WORDS = {
  pending: 'Pending: the phone has not tapped Activate yet',
  active: 'Active',
  expired: 'Expired',
};

/** Wires the card to the console (`app`, app.js); returns its `render(now)`. */
export function sessionCard(app) {
  const form = byId('create-session');
  const input = byId('phone');
  const revoke = byId('revoke');

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    once(form, async () => {
      fieldError(input, '');
      say('session-news', '');
      try {
        const { session } = await app.changeSession(() => app.api.createSession(input.value));
        app.setSession(session);
        input.value = '';
        const who = isVirtualPhone(session.phoneE164) ? 'the virtual phone (its pane is beside the conversation)' : phone(session.phoneE164);
        say(
          'session-news',
          session.status === 'active'
            ? `The session for ${phone(session.phoneE164)} is already active.`
            : `Session created: the activation template was sent to ${who}.`,
        );
      } catch (error) {
        app.refused(error, () =>
          fieldError(
            input,
            // Meta's own message leads its error in words.
            error.platformError ? `Meta refused the template: ${metaErrorInWords(error.platformError)}` : error.message,
          ),
        );
      }
    });
  });

  revoke.addEventListener('click', () =>
    once(revoke, async () => {
      say('revoke-error', '');
      const session = app.session;
      if (!session) return;
      try {
        await app.changeSession(() => app.api.revoke(session.id));
      } catch (error) {
        // Already gone (revoked elsewhere, or expired): the same outcome.
        if (error.code !== 'session_not_found') {
          app.refused(error, () => say('revoke-error', error.message));
          return;
        }
      }
      app.setSession(null);
      say('session-news', `Session for ${phone(session.phoneE164)} revoked.`);
      input.focus();
    }),
  );

  return function render(now) {
    const session = app.session;
    byId('session-none').hidden = Boolean(session);
    byId('session-details').hidden = !session;
    revoke.hidden = !session || sessionState(session, now) === 'expired';
    if (!session) return;
    const state = sessionState(session, now);
    byId('session-phone').textContent = phone(session.phoneE164) + (isVirtualPhone(session.phoneE164) ? ' (virtual phone)' : '');
    byId('session-state').textContent = STATE_WORDS[state];
    byId('session-state').className = `state ${state}`;
    byId('session-expires').textContent =
      state === 'expired'
        ? `${dateTime(session.expiresAt, now)} (expired ${relative(session.expiresAt, now)})`
        : `${dateTime(session.expiresAt, now)} (${relative(session.expiresAt, now)})`;
    const delivery = session.delivery;
    byId('session-delivery').textContent =
      deliveryWords(delivery) + (delivery && delivery.status !== 'failed' ? ` at ${dateTime(delivery.updatedAt, now)}` : '');
  };
}
