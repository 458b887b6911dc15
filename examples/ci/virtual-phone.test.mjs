// A CI test of a WhatsApp integration with no phone and no Meta account, in the style of an
// API user's own suite: Node's built-in test runner, Zernio's Node SDK (`@zernio/node`,
// unchanged) and `fetch` for the two sandbox routes the SDK's pinned version has no method for
// (sending a sandbox message, and telling the virtual phone to answer).
//
// A virtual phone (+1 NXX 555 0100 to +1 NXX 555 0199) is played by the sandbox itself, with
// Meta's own webhook shapes, through the same pipeline a real phone's messages take. This test
// registers a webhook receiver it runs itself (checking both signatures of every delivery),
// creates a session on a virtual phone, activates it, sends it a message, makes the phone
// answer, and asserts the signed events that arrive.
//
//   SANDBOX_API_URL=http://localhost:9000 SANDBOX_API_KEY=wsk_... node --test examples/ci/
//
// Against `make dev`'s stack, the receiver on 127.0.0.1 is reachable (make dev allows private
// webhook targets). Against a deployed copy, set RECEIVER_URL to a public URL that forwards to
// RECEIVER_PORT on this machine (a tunnel), since a deployed sandbox delivers to public
// addresses only. VIRTUAL_PHONE chooses the number (default: a random reachable line of area
// code 201, so two runs at once do not share a phone).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';

import Zernio from '@zernio/node';

const baseURL = process.env.SANDBOX_API_URL;
const apiKey = process.env.SANDBOX_API_KEY;
assert.ok(baseURL && apiKey, 'set SANDBOX_API_URL and SANDBOX_API_KEY');
const line = String(Math.floor(Math.random() * 50)).padStart(2, '0');
const phone = process.env.VIRTUAL_PHONE ?? `+1 201 555 01${line}`;
const digits = phone.replace(/\D/g, '');
/** How long an event may take to arrive (the stream, then the delivery). */
const EVENT_WAIT_MS = Number(process.env.EVENT_WAIT_MS ?? 60_000);

const zernio = new Zernio({ apiKey, baseURL });

/** The two sandbox calls the SDK has no method for, as JSON over fetch. */
async function call(method, path, body) {
  const response = await fetch(new URL(path, baseURL), {
    method,
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  assert.equal(response.status, 200, `${method} ${path}: ${JSON.stringify(json)}`);
  return json;
}

// ---- the webhook receiver: every delivery checked with both signatures ----------------------

const secret = `whsec_${crypto.randomBytes(32).toString('base64')}`;
/** Verified events, in arrival order. */
const events = [];
const equal = (a, b) => a.length === b.length && crypto.timingSafeEqual(Buffer.from(a), Buffer.from(b));

/** Whether `body` (raw bytes) with these headers was signed with our secret, both ways. */
function signed(headers, body) {
  const zernio = crypto.createHmac('sha256', secret).update(body).digest('hex');
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const standard = `v1,${crypto.createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64')}`;
  return (
    equal(zernio, headers['x-zernio-signature'] ?? '') &&
    (headers['webhook-signature'] ?? '').split(' ').some((s) => equal(s, standard))
  );
}

const receiver = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c)).on('end', () => {
    const body = Buffer.concat(chunks);
    if (!signed(req.headers, body)) {
      res.writeHead(401).end();
      return;
    }
    const event = JSON.parse(body);
    // Retries repeat an event id: count each event once.
    if (!events.some((e) => e.id === event.id)) events.push(event);
    res.writeHead(200).end('ok');
  });
});

/** The first event that `matches`, waiting for it to arrive. */
async function event(what, matches) {
  const deadline = Date.now() + EVENT_WAIT_MS;
  for (;;) {
    const found = events.find(matches);
    if (found) return found;
    if (Date.now() > deadline) {
      assert.fail(`no ${what} within ${EVENT_WAIT_MS} ms; got ${JSON.stringify(events.map((e) => e.event))}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// ---- the test --------------------------------------------------------------------------------

describe(`a virtual phone (${phone}) in CI`, () => {
  let webhookId;
  let sessionId;

  before(async () => {
    await new Promise((resolve) => receiver.listen(Number(process.env.RECEIVER_PORT ?? 0), '127.0.0.1', resolve));
    const url = process.env.RECEIVER_URL ?? `http://127.0.0.1:${receiver.address().port}/`;
    const { data } = await zernio.webhooks.createWebhookSettings({
      body: {
        name: 'ci virtual phone',
        url,
        secret,
        events: ['message.received', 'message.sent', 'message.delivered', 'message.read',
          'whatsapp.sandbox.session.activated'],
      },
    });
    webhookId = data.webhook._id;
  });

  after(async () => {
    if (sessionId) await zernio.whatsappsandbox.deleteWhatsAppSandboxSession({ path: { sessionId } });
    if (webhookId) await zernio.webhooks.deleteWebhookSettings({ query: { webhookId } });
    receiver.close();
  });

  it('creates a session on the virtual phone, pending until the phone answers', async () => {
    const { data } = await zernio.whatsappsandbox.createWhatsAppSandboxSession({ body: { phone } });
    assert.equal(data.session.phoneE164, digits);
    assert.equal(data.session.status, 'pending');
    sessionId = data.session.id;
  });

  it('activates it when the phone taps Activate', async () => {
    const { message } = await call('POST', `/v1/whatsapp/sandbox/sessions/${sessionId}/reply`, { type: 'activate' });
    assert.equal(message.type, 'button');
    const { data } = await zernio.whatsappsandbox.listWhatsAppSandboxSessions();
    assert.equal(data.sessions[0].status, 'active');
    const activated = await event('session.activated', (e) => e.event === 'whatsapp.sandbox.session.activated');
    assert.equal(activated.session.id, sessionId);
  });

  it('sends a message, which the phone reports sent, delivered and read', async () => {
    const { message } = await call('POST', '/v1/whatsapp/sandbox/messages', {
      type: 'text',
      text: { body: 'Your order shipped!' },
    });
    for (const status of ['message.sent', 'message.delivered', 'message.read']) {
      const reported = await event(status, (e) => e.event === status && e.message?.id === message.id);
      assert.equal(reported.message.direction, 'outgoing');
    }
  });

  it('receives the phone\'s answer, signed, as message.received', async () => {
    const { message } = await call('POST', `/v1/whatsapp/sandbox/sessions/${sessionId}/reply`, {
      type: 'text',
      text: 'Thanks, got it',
    });
    const received = await event('the answer', (e) => e.event === 'message.received' && e.message?.id === message.id);
    assert.equal(received.message.text, 'Thanks, got it');
    assert.equal(received.message.direction, 'incoming');
    assert.equal(received.message.sender.id, digits);
  });
});
