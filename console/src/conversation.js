// The conversation: WhatsApp-style bubbles in a `role="log"` (new messages are announced
// politely), the time left in the 24-hour window, and a composer that sends text inside the
// window and says why it cannot outside it. app.js polls the first page only; older pages load
// when asked for.

import { showBubbles, stayAtBottom } from './bubbles.js';
import { byId, fieldError, once } from './dom.js';
import { clock, dateTime, duration } from './format.js';
import { bubble, windowState } from './model.js';

/** Why the composer is closed, by `windowState`'s reason. */
const CLOSED = {
  none: 'No live session: create one to message a phone.',
  pending: 'The session is pending: messages can be sent once the phone taps Activate.',
  expired: 'The session expired: create a new one to message the phone again.',
  never:
    "The phone has not written yet: WhatsApp allows free-form messages only within 24 hours of the phone's latest message.",
};

/** A new `Idempotency-Key`, so a send retried by a double click goes out once. */
const newKey = () => globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random()}`;

/** Wires the conversation to the console (`app`, app.js); returns its `render(now)`. */
export function conversationView(app) {
  const form = byId('composer');
  const input = byId('message');
  const send = form.querySelector('button[type="submit"]');
  const log = byId('message-log');
  const older = byId('older-messages');

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    once(form, async () => {
      const text = input.value;
      if (!text.trim()) {
        fieldError(input, 'Type a message first.');
        return;
      }
      fieldError(input, '');
      try {
        await app.api.sendText(text, newKey());
        input.value = '';
        await app.refreshMessages();
      } catch (error) {
        app.refused(error, () => {
          fieldError(input, error.message);
          if (error.code === 'outside_customer_service_window') {
            // The API knows best: the window is closed whatever this clock says.
            app.conversation.windowExpiresAt = error.details?.windowExpiresAt ?? new Date(0).toISOString();
            app.render();
          }
        });
      }
    });
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  older.addEventListener('click', () => once(older, () => app.loadOlder()));

  return function render(now) {
    const c = app.conversation;
    const messages = [...c.messages].reverse();
    stayAtBottom(log, () =>
      showBubbles(byId('messages'), messages.map(bubble), { mine: (b) => b.outbound, ticks: true, choose: null }),
    );
    byId('messages-empty').hidden = messages.length > 0;
    older.hidden = !c.olderCursor;

    const w = windowState(app.session, c.windowExpiresAt, now);
    const until = w.until ? new Date(w.until).toISOString() : null;
    byId('window-status').textContent = w.open
      ? `The customer-service window is open for ${duration(w.until - now)} more (until ${clock(until)}): text messages can be sent.`
      : w.reason === 'closed'
        ? `The customer-service window closed at ${dateTime(until, now)}: WhatsApp allows free-form messages only within 24 hours of the phone's latest message, so the composer opens again when the phone writes.`
        : CLOSED[w.reason];
    byId('window-status').className = `window ${w.open ? 'open' : 'closed'}`;
    input.disabled = !w.open;
    send.disabled = !w.open;
  };
}
