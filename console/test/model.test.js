// The console's rules (src/model.js): what the API's answers mean to a person.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  bubble,
  deliveryWords,
  endedWords,
  formatHeaders,
  isVirtualPhone,
  mergePages,
  metaErrorInWords,
  parseHeaders,
  sessionState,
  windowState,
} from '../src/model.js';

const NOW = Date.parse('2026-11-24T14:15:22Z');
const session = (status, expiresAt) => ({
  id: 'wss_3kTMd9Xr7QeZp1bN8vYc2a',
  phoneE164: '34688246216',
  status,
  expiresAt,
  createdAt: '2026-11-24T14:00:00Z',
});

test('a session past its expiry is expired by time, whatever its status says', () => {
  assert.equal(sessionState(session('pending', '2026-11-25T14:15:22Z'), NOW), 'pending');
  assert.equal(sessionState(session('active', '2026-12-01T14:15:22Z'), NOW), 'active');
  assert.equal(sessionState(session('active', '2026-11-24T14:15:22Z'), NOW), 'expired');
});

test('a session gone from the list before its expiry ended, said in words; one past it expired', () => {
  const shown = session('active', '2026-12-01T14:15:22Z');
  assert.equal(
    endedWords(shown, null, NOW),
    'The session for +34688246216 ended: the phone wrote STOP, or the session was revoked elsewhere.',
  );
  assert.equal(endedWords(shown, shown, NOW), null);
  assert.equal(endedWords(session('active', '2026-11-24T14:15:22Z'), null, NOW), null);
  assert.equal(endedWords(null, null, NOW), null);
});

test('the composer opens only for an active session inside its window, and says why not', () => {
  const active = session('active', '2026-12-01T14:15:22Z');
  assert.deepEqual(windowState(null, null, NOW), { open: false, reason: 'none' });
  assert.equal(windowState(session('pending', '2026-11-25T14:15:22Z'), null, NOW).reason, 'pending');
  assert.equal(windowState(session('active', '2026-11-24T14:15:00Z'), '2026-11-25T00:00:00Z', NOW).reason, 'expired');
  assert.equal(windowState(active, null, NOW).reason, 'never');
  assert.deepEqual(windowState(active, '2026-11-24T14:16:00Z', NOW), {
    open: true,
    reason: 'open',
    until: Date.parse('2026-11-24T14:16:00Z'),
  });
  assert.equal(windowState(active, '2026-11-24T14:15:22Z', NOW).reason, 'closed');
});

test("Meta's error reads with its code, its details and what it means", () => {
  const words = metaErrorInWords({
    code: 131026,
    title: 'Message undeliverable',
    message: 'Message undeliverable',
    details: 'Message Undeliverable.',
  });
  assert.equal(
    words,
    'Message undeliverable (131026). The phone cannot receive it: it may not be on WhatsApp, may run an old version, or has not accepted the terms.',
  );
  assert.match(metaErrorInWords({ code: 1, message: 'Something odd', error_data: { details: 'A detail' } }), /^Something odd \(1\)\. A detail$/);
  assert.equal(metaErrorInWords(undefined), 'Meta gave no reason.');
});

test("the template's delivery reads as its tick's name, or the failure in words", () => {
  assert.equal(deliveryWords(undefined), 'Sent to Meta; no delivery report yet');
  assert.equal(deliveryWords({ status: 'read', updatedAt: '2026-11-24T14:15:22Z' }), 'Read');
  assert.match(deliveryWords({ status: 'failed', error: { code: 131030, title: 'Not allowed' } }), /^Failed: Not allowed \(131030\)\. The phone is not on/);
});

test('virtual phones are +1 NXX 555 0100 to 0199 only', () => {
  for (const yes of ['12025550100', '12025550155', '19995550199']) assert.ok(isVirtualPhone(yes), yes);
  for (const no of ['12025550200', '12025550099', '11025550150', '34688246216', '120255501555', '', undefined]) {
    assert.ok(!isVirtualPhone(no), String(no));
  }
});

test('a bubble shows each kind of message', () => {
  const base = { id: 'wamid.1', phoneE164: '34688246216', createdAt: '2026-11-24T14:15:22Z' };
  const text = bubble({ ...base, direction: 'outbound', type: 'text', text: { body: 'Hello' }, status: 'read' });
  assert.deepEqual([text.outbound, text.text, text.status, text.failure], [true, 'Hello', 'read', null]);

  const failed = bubble({ ...base, direction: 'outbound', type: 'text', text: { body: 'x' }, status: 'failed', error: { code: 131047, title: 'Re-engagement message' } });
  assert.match(failed.failure, /^Re-engagement message \(131047\)\. More than 24 hours/);

  const tap = bubble({ ...base, direction: 'inbound', type: 'button', button: { payload: 'activate:wss_x', text: 'Activate' } });
  assert.deepEqual([tap.outbound, tap.text, tap.status], [false, 'Activate', null]);

  const buttons = bubble({
    ...base,
    direction: 'outbound',
    type: 'interactive',
    interactive: {
      type: 'button',
      body: { text: 'Pick one' },
      action: { buttons: [{ type: 'reply', reply: { id: 'yes', title: 'Yes' } }, { type: 'reply', reply: { id: 'no', title: 'No' } }] },
    },
  });
  assert.equal(buttons.text, 'Pick one');
  assert.deepEqual(buttons.choices, [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }]);

  const list = bubble({
    ...base,
    direction: 'outbound',
    type: 'interactive',
    interactive: {
      type: 'list',
      body: { text: 'Menu' },
      action: { button: 'See options', sections: [{ title: 'A', rows: [{ id: 'r1', title: 'One', description: 'First' }] }] },
    },
  });
  assert.deepEqual(list.list, { button: 'See options', rows: [{ id: 'r1', title: 'One', description: 'First' }] });

  const picked = bubble({ ...base, direction: 'inbound', type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: 'yes', title: 'Yes' } } });
  assert.equal(picked.text, 'Yes');

  const template = bubble({ ...base, direction: 'outbound', type: 'template', template: { name: 'sandbox_start', language: 'en_US' } });
  assert.equal(template.caption, 'Template sandbox_start (en_US)');
  assert.equal(bubble({ ...base, direction: 'inbound', type: 'image' }).caption, 'A image message');
});

test('pages merge newest first, each message once as its newest copy says', () => {
  const m = (id, status) => ({ id, direction: 'outbound', status, createdAt: '2026-11-24T14:15:22Z' });
  const merged = mergePages([m('c', 'read'), m('b', 'read')], [[m('b', 'sent'), m('a', 'delivered')]]);
  assert.deepEqual(
    merged.map((x) => [x.id, x.status]),
    [['c', 'read'], ['b', 'read'], ['a', 'delivered']],
  );
});

test('custom headers are typed one "Name: value" a line, and a line without a name is refused', () => {
  assert.deepEqual(parseHeaders('X-Team: payments\n\n  X-Env :  local  \n'), { headers: { 'X-Team': 'payments', 'X-Env': 'local' } });
  assert.deepEqual(parseHeaders(''), { headers: {} });
  assert.deepEqual(parseHeaders('X-Team: a\nnope'), { error: 'Line 2 is not "Name: value".' });
  assert.deepEqual(parseHeaders(': value'), { error: 'Line 1 is not "Name: value".' });
  assert.equal(formatHeaders({ 'X-Team': 'payments', 'X-Env': 'local' }), 'X-Team: payments\nX-Env: local');
  assert.equal(formatHeaders(undefined), '');
});
