// Message bubbles in WhatsApp's idiom, for the conversation and for the phone pane: the
// sender's on the right, the other side's on the left; each with its time and, for the
// business's messages in the conversation, its status ticks (a clock, one tick, two, two blue,
// or a warning with Meta's reason). Reply buttons show under their bubble, a list as one button.

import { h, icon, keyed } from './dom.js';
import { clock } from './format.js';
import { TICKS } from './model.js';

const TICK = 'M1 5.5l3 3L10.5 1';
const SECOND_TICK = 'M6.5 7.5l1 1L15 1';
const CLOCK = ['M8 1a5 5 0 1 0 0 10A5 5 0 1 0 8 1z', 'M8 3.5V6l2 1.5'];
const WARNING = ['M8 1a5 5 0 1 0 0 10A5 5 0 1 0 8 1z', 'M8 3.2v3.6', 'M8 8.4v.4'];

/** The status mark of an outbound message, named for assistive technology ("Read"). */
function tick(status) {
  const { ticks, label } = TICKS[status] ?? TICKS.accepted;
  const paths = status === 'failed' ? WARNING : ticks === 0 ? CLOCK : ticks === 1 ? [TICK] : [TICK, SECOND_TICK];
  return h('span', { class: `tick ${status}`, role: 'img', 'aria-label': label }, icon(paths));
}

/** The time and (when asked) the ticks, at the bubble's foot. */
function stamp(b, withTicks) {
  return h(
    'span',
    { class: 'stamp' },
    h('time', { datetime: b.createdAt }, clock(b.createdAt)),
    withTicks && b.status ? tick(b.status) : null,
  );
}

/** Reply buttons and a list's rows: buttons that `choose(id)` in the phone pane, plain
 * labels in the conversation (the business does not tap its own buttons). */
function choices(b, choose) {
  if (b.choices.length) {
    return h(
      'ul',
      { class: 'choices' },
      b.choices.map((c) =>
        h('li', {}, choose ? h('button', { type: 'button', onclick: () => choose(c.id, c.title) }, c.title) : c.title),
      ),
    );
  }
  if (!b.list) return null;
  if (!choose) {
    return h('ul', { class: 'choices' }, h('li', {}, b.list.button), b.list.rows.map((r) => h('li', { class: 'row' }, r.title)));
  }
  const rows = h(
    'ul',
    { class: 'choices rows', hidden: true },
    b.list.rows.map((r) =>
      h('li', {}, h('button', { type: 'button', onclick: () => choose(r.id, r.title) }, r.title, r.description ? h('small', {}, r.description) : null)),
    ),
  );
  const opener = h('button', {
    type: 'button',
    'aria-expanded': 'false',
    onclick: () => {
      rows.hidden = !rows.hidden;
      opener.setAttribute('aria-expanded', String(!rows.hidden));
    },
  }, b.list.button);
  return h('div', { class: 'list' }, h('ul', { class: 'choices' }, h('li', {}, opener)), rows);
}

/**
 * Shows `bubbles` (oldest first) in `list`. `mine(b)`: whether the bubble is this side's (on
 * the right); `ticks`: whether this side sees the business's ticks; `choose(b, id, title)`: a
 * tap on a button (the phone pane), or `null`.
 */
export function showBubbles(list, bubbles, { mine, ticks, choose }) {
  const draw = (node, b) => {
    // The content of a message never changes; its status does, so only its foot is redrawn.
    const content = JSON.stringify([b.text, b.caption, b.choices, b.list, mine(b)]);
    if (node.dataset.content !== content) {
      node.className = `msg ${mine(b) ? 'mine' : 'theirs'}`;
      const body = h(
        'div',
        { class: 'bubble' },
        b.caption ? h('p', { class: 'caption' }, b.caption) : null,
        b.text ? h('p', { class: 'text' }, b.text) : null,
        stamp(b, ticks),
      );
      const buttons = choices(b, choose && ((id, title) => choose(b, id, title)));
      node.replaceChildren(...(buttons ? [body, buttons] : [body]));
      node.dataset.content = content;
      node.dataset.state = '';
    }
    const state = JSON.stringify([b.status, b.failure]);
    if (node.dataset.state !== state) {
      node.querySelector('.stamp').replaceWith(stamp(b, ticks));
      node.querySelector('.failure')?.remove();
      if (ticks && b.failure) node.append(h('p', { class: 'failure' }, `Not delivered: ${b.failure}`));
      node.dataset.state = state;
    }
  };
  keyed(
    list,
    bubbles,
    (b) => b.key,
    (b) => {
      const node = h('li');
      draw(node, b);
      return node;
    },
    draw,
  );
}

/** Keeps a scrolled log at its newest message when it was there before `change` ran. */
export function stayAtBottom(log, change) {
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  change();
  if (atBottom) log.scrollTop = log.scrollHeight;
}
