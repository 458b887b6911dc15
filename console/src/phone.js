// The phone pane, for a virtual phone's session (+1 NXX 555 0100 to 0199, which the service
// plays): what the phone sees, the activation template with its Activate button first, then the
// conversation from the phone's side (its own messages on the right). Tapping, typing and
// picking call `POST /v1/whatsapp/sandbox/sessions/{sessionId}/reply`, as any client may.

import { showBubbles, stayAtBottom } from './bubbles.js';
import { byId, fieldError, once } from './dom.js';
import { phone } from './format.js';
import { ACTIVATE, bubble, isVirtualPhone } from './model.js';

/** The activation template as the phone shows it: a bubble with one quick-reply button. */
function template(session) {
  return {
    key: `template:${session.id}`,
    outbound: true,
    createdAt: session.createdAt,
    text: 'Tap Activate to let this WhatsApp sandbox message you. Reply STOP to opt out.',
    caption: 'Sandbox activation',
    choices: [{ id: ACTIVATE, title: ACTIVATE }],
    list: null,
    status: null,
    failure: null,
  };
}

/** Wires the pane to the console (`app`, app.js); returns its `render(now)`. */
export function phonePane(app) {
  const form = byId('reply');
  const input = byId('reply-text');

  /** Makes the phone do `body` (`/reply`), then shows the conversation as it is now. */
  const act = (body) =>
    once(form, async () => {
      const session = app.session;
      if (!session) return;
      fieldError(input, '');
      try {
        await app.api.reply(session.id, body);
        if (body.type === 'text') input.value = '';
        await Promise.all([app.refreshMessages(), app.refreshSession()]);
      } catch (error) {
        app.refused(error, () => fieldError(input, error.message));
      }
    });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!input.value.trim()) {
      fieldError(input, 'Type a reply first.');
      return;
    }
    act({ type: 'text', text: input.value });
  });

  const choose = (b, id) => act(b.key.startsWith('template:') ? { type: 'activate' } : { type: 'interactive', id });

  return function render() {
    const session = app.session;
    const pane = byId('phone-pane');
    pane.hidden = !session || !isVirtualPhone(session.phoneE164);
    if (pane.hidden) return;
    byId('phone-number').textContent = phone(session.phoneE164);
    const c = app.conversation;
    // The phone's messages, oldest first, with the template where it was sent.
    const own = c.messages
      .filter((m) => m.phoneE164 === session.phoneE164)
      .map(bubble)
      .reverse();
    const at = own.findIndex((b) => b.createdAt >= session.createdAt);
    own.splice(at < 0 ? own.length : at, 0, template(session));
    stayAtBottom(byId('phone-log'), () =>
      showBubbles(byId('phone-messages'), own, { mine: (b) => !b.outbound, ticks: false, choose }),
    );
  };
}
