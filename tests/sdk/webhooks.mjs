// Zernio's Node SDK (`@zernio/node`, the version pinned in package.json), unchanged, driving
// every webhook method against the real `/v1/webhooks/*` routes: `ZERNIO_BASE_URL` and the API
// key `ZERNIO_API_KEY` name the service (tests/api/webhooks_sdk.rs serves the real handler on
// 127.0.0.1 and runs this script; the service must allow private targets, as `make dev` does).
// The receiver for test and redeliver is a plain HTTP server in this script.
//
// Every answer is checked against the SDK's own types (node_modules/@zernio/node/dist/index.d.ts:
// `Webhook`, `WebhookLog`, `GetWebhookLogsResponse`, `TestWebhookResponse`, ...): a field the
// type declares is absent or of the declared type, never `null` unless the type says so.
//
//   ZERNIO_BASE_URL=http://127.0.0.1:9000 ZERNIO_API_KEY=sk_... node tests/sdk/webhooks.mjs

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';

import Zernio, { ZernioApiError } from '@zernio/node';

const baseURL = process.env.ZERNIO_BASE_URL;
const apiKey = process.env.ZERNIO_API_KEY;
assert.ok(baseURL && apiKey, 'set ZERNIO_BASE_URL and ZERNIO_API_KEY');

const zernio = new Zernio({ apiKey, baseURL });
const { webhooks } = zernio;

// ---- the SDK's types, as runtime checks ---------------------------------------------------

/** `Webhook` of index.d.ts (every field optional there). */
const WEBHOOK = {
  _id: 'string',
  name: 'string',
  url: 'string',
  secret: 'string',
  events: 'string[]',
  isActive: 'boolean',
  lastFiredAt: 'string',
  failureCount: 'number',
  customHeaders: 'record<string>',
  disabledResourceGroups: 'string[]',
};
/** `WebhookLog` of index.d.ts. */
const WEBHOOK_LOG = {
  userId: 'string',
  webhookId: 'string',
  webhookName: 'string',
  eventId: 'string',
  event: 'string',
  url: 'string',
  status: ['success', 'failed'],
  statusCode: 'number',
  requestPayload: 'object',
  responseBody: 'string',
  errorMessage: 'string',
  attemptNumber: 'number',
  responseTime: 'number',
  createdAt: 'string',
};
/** `GetWebhookLogsResponse['pagination']`. */
const PAGINATION = { total: 'number', limit: 'number', skip: 'number', pages: 'number', hasMore: 'boolean' };
/** `TestWebhookResponse` and `RedeliverWebhookEventResponse`. */
const ATTEMPT = { success: 'boolean', message: 'string' };

const isType = (value, type) => {
  if (Array.isArray(type)) return type.includes(value);
  switch (type) {
    case 'string[]':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'record<string>':
      return isObject(value) && Object.values(value).every((v) => typeof v === 'string');
    case 'object':
      return isObject(value);
    case 'number':
      return Number.isFinite(value);
    default:
      return typeof value === type;
  }
};
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Asserts that `value` is what the SDK's type `shape` promises, and that `present` are there. */
function assertShape(value, shape, present, what) {
  assert.ok(isObject(value), `${what} is an object: ${JSON.stringify(value)}`);
  for (const [field, type] of Object.entries(shape)) {
    if (present.includes(field)) assert.ok(field in value, `${what} has ${field}: ${JSON.stringify(value)}`);
    if (field in value) {
      assert.ok(
        isType(value[field], type),
        `${what}.${field} is ${JSON.stringify(type)} as the SDK's type says, not ${JSON.stringify(value[field])}`,
      );
    }
  }
}

const WEBHOOK_FIELDS = [
  '_id', 'name', 'url', 'events', 'isActive', 'failureCount', 'customHeaders', 'disabledResourceGroups',
];
const assertWebhook = (w, what = 'webhook') => assertShape(w, WEBHOOK, WEBHOOK_FIELDS, what);
const LOG_FIELDS = [
  'webhookId', 'webhookName', 'eventId', 'event', 'url', 'status', 'requestPayload', 'attemptNumber',
  'responseTime', 'createdAt',
];
const isTimestamp = (s) => typeof s === 'string' && !Number.isNaN(Date.parse(s));

/** The `ZernioApiError` a call rejects with. */
async function refusal(call) {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof ZernioApiError, `a ZernioApiError, not ${e}`);
    return e;
  }
  assert.fail('the call was refused');
}

/** Asserts a 400 `invalid_field_value` on `param`, as `ZernioApiError` carries it. */
async function assertInvalid(call, param) {
  const e = await refusal(call);
  assert.equal(e.statusCode, 400, e.message);
  assert.ok(e.isValidationError());
  assert.equal(e.param, param, JSON.stringify(e.body));
  assert.equal(e.type, 'invalid_request_error');
  assert.equal(e.code, 'invalid_field_value');
  assert.ok(e.message.length > 0);
  return e;
}

// ---- the receiver ---------------------------------------------------------------------------

/** Every request the receiver got: `{ path, headers, body }` (the body as raw bytes). */
const deliveries = [];
const receiver = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c)).on('end', () => {
    deliveries.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks) });
    if (req.url === '/fail') res.writeHead(500).end('not today');
    else res.writeHead(200).end('ok');
  });
});
let receiverURL;

/** The deliveries made while `call` ran. */
async function deliveriesOf(call) {
  const before = deliveries.length;
  const result = await call();
  return { result, got: deliveries.slice(before) };
}

/** Asserts both signatures of a delivery, computed here from the raw bytes and `secret`. */
function assertSigned(delivery, secret) {
  const { headers, body } = delivery;
  const hex = crypto.createHmac('sha256', secret).update(body).digest('hex');
  assert.equal(headers['x-zernio-signature'], hex, 'X-Zernio-Signature');
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret);
  const signed = `${headers['webhook-id']}.${headers['webhook-timestamp']}.`;
  const v1 = 'v1,' + crypto.createHmac('sha256', key).update(signed).update(body).digest('base64');
  assert.ok(headers['webhook-signature'].split(' ').includes(v1), 'webhook-signature');
  assert.ok(Math.abs(Date.now() / 1000 - Number(headers['webhook-timestamp'])) < 300, 'webhook-timestamp is now');
}

before(async () => {
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverURL = `http://127.0.0.1:${receiver.address().port}`;
});
after(() => receiver.close());

// ---- the methods ----------------------------------------------------------------------------

describe("@zernio/node's webhook methods", { timeout: 60_000 }, () => {
  /** The webhook created without a secret, and the secret create answered with. */
  let hook, secret;
  /** A second one, to a receiver path that answers 500. */
  let failing;
  /** The test event delivered to `hook`. */
  let testEvent;
  /** Stops a step early, with one clear message, when a step it builds on failed. */
  const needs = (...earlier) => assert.ok(earlier.every(Boolean), 'an earlier step this one needs failed (above)');

  it('createWebhookSettings answers {success, webhook} with a generated whsec_ secret, once', async () => {
    const body = {
      name: 'Orders',
      url: `${receiverURL}/ok`,
      events: ['message.received', 'message.read'],
      customHeaders: { 'X-Api-Key': 'k-1' },
      // The SDK's `disabledResourceGroups`: `accounts` holds the session events, none of these.
      disabledResourceGroups: ['accounts', 'billing'],
    };
    const { data, response } = await webhooks.createWebhookSettings({ body });
    assert.equal(response.status, 200);
    assert.equal(data.success, true);
    assertWebhook(data.webhook);
    const w = data.webhook;
    assert.match(w._id, /^wh_/);
    assert.equal(w.name, 'Orders');
    assert.equal(w.url, body.url);
    assert.deepEqual(w.events, body.events);
    assert.equal(w.isActive, true, 'isActive defaults to true');
    assert.equal(w.failureCount, 0);
    assert.equal(w.lastFiredAt, undefined, 'never fired');
    assert.deepEqual(w.customHeaders, body.customHeaders);
    assert.deepEqual(w.disabledResourceGroups, body.disabledResourceGroups);
    assert.match(w.secret, /^whsec_/);
    assert.equal(Buffer.from(w.secret.slice(6), 'base64').length, 32, '32 random bytes');
    hook = w;
    secret = w.secret;
  });

  it('createWebhookSettings keeps a given secret and isActive', async () => {
    const body = {
      name: 'Flaky',
      url: `${receiverURL}/fail`,
      events: ['message.failed'],
      secret: 'my-own-secret',
      isActive: false,
    };
    const { data } = await webhooks.createWebhookSettings({ body });
    assertWebhook(data.webhook);
    assert.equal(data.webhook.secret, 'my-own-secret');
    assert.equal(data.webhook.isActive, false);
    assert.deepEqual(data.webhook.disabledResourceGroups, [], 'none unless given');
    failing = data.webhook;
  });

  it('getWebhookSettings lists both, never with a secret', async () => {
    needs(hook, failing);
    const { data } = await webhooks.getWebhookSettings();
    assert.ok(Array.isArray(data.webhooks));
    data.webhooks.forEach((w, i) => assertWebhook(w, `webhooks[${i}]`));
    const ids = data.webhooks.map((w) => w._id).sort();
    assert.deepEqual(ids, [hook._id, failing._id].sort());
    for (const w of data.webhooks) assert.ok(!('secret' in w), `no secret in ${JSON.stringify(w)}`);
    const listed = data.webhooks.find((w) => w._id === hook._id);
    const { secret: _, ...shown } = hook;
    assert.deepEqual(listed, shown);
  });

  it('updateWebhookSettings changes the fields sent and keeps the others', async () => {
    needs(hook);
    const { data } = await webhooks.updateWebhookSettings({
      body: {
        webhookId: hook._id,
        name: 'Orders v2',
        events: ['message.received', 'webhook.test'],
        customHeaders: { 'X-Api-Key': 'k-2' },
        // Replaced; a test belongs to no group, so the tests below still go.
        disabledResourceGroups: ['messages', 'accounts', 'webhooks'],
      },
    });
    assert.equal(data.success, true);
    assertWebhook(data.webhook);
    assert.ok(!('secret' in data.webhook));
    assert.equal(data.webhook._id, hook._id);
    assert.equal(data.webhook.name, 'Orders v2');
    assert.deepEqual(data.webhook.events, ['message.received', 'webhook.test']);
    assert.deepEqual(data.webhook.customHeaders, { 'X-Api-Key': 'k-2' });
    assert.deepEqual(data.webhook.disabledResourceGroups, ['messages', 'accounts', 'webhooks']);
    assert.equal(data.webhook.url, hook.url);
    assert.equal(data.webhook.isActive, true);
    const listed = (await webhooks.getWebhookSettings()).data.webhooks.find((w) => w._id === hook._id);
    assert.deepEqual(listed, data.webhook);
  });

  it('updateWebhookSettings takes the deprecated _id too', async () => {
    needs(failing);
    const { data } = await webhooks.updateWebhookSettings({ body: { _id: failing._id, isActive: true } });
    assert.equal(data.webhook._id, failing._id);
    assert.equal(data.webhook.isActive, true);
  });

  it('a validation refusal is a ZernioApiError with the 400 and its param', async () => {
    needs(hook);
    const ok = { name: 'x', url: `${receiverURL}/ok`, events: ['message.received'] };
    await assertInvalid(() => webhooks.createWebhookSettings({ body: { ...ok, name: '' } }), 'name');
    await assertInvalid(() => webhooks.createWebhookSettings({ body: { ...ok, name: 'n'.repeat(51) } }), 'name');
    await assertInvalid(() => webhooks.createWebhookSettings({ body: { ...ok, url: 'ftp://example.com/hook' } }), 'url');
    await assertInvalid(() => webhooks.createWebhookSettings({ body: { ...ok, events: [] } }), 'events');
    await assertInvalid(() => webhooks.createWebhookSettings({ body: { ...ok, events: ['post.published'] } }), 'events');
    await assertInvalid(
      () => webhooks.createWebhookSettings({ body: { ...ok, customHeaders: { 'X-Zernio-Event': 'forged' } } }),
      'customHeaders',
    );
    await assertInvalid(() => webhooks.updateWebhookSettings({ body: { webhookId: hook._id, events: [] } }), 'events');
    await assertInvalid(
      () => webhooks.updateWebhookSettings({ body: { webhookId: hook._id, disabledResourceGroups: ['sms'] } }),
      'disabledResourceGroups',
    );
    await assertInvalid(() => webhooks.updateWebhookSettings({ body: { name: 'no id' } }), 'webhookId');
    await assertInvalid(() => webhooks.deleteWebhookSettings(), 'webhookId');
    await assertInvalid(() => webhooks.getWebhookLogs({ query: { status: 'maybe' } }), 'status');
    await assertInvalid(() => webhooks.getWebhookLogs({ query: { limit: 0 } }), 'limit');
    // Nothing was created by the refusals.
    assert.equal((await webhooks.getWebhookSettings()).data.webhooks.length, 2);
  });

  it('an unknown key is a 401 and an unknown webhook a 404, through the SDK', async () => {
    const stranger = new Zernio({ apiKey: 'sk_test_nobody_000000000000000000000000', baseURL });
    const denied = await refusal(() => stranger.webhooks.getWebhookSettings());
    assert.equal(denied.statusCode, 401);
    assert.ok(denied.isAuthError());
    const missing = await refusal(() => webhooks.testWebhook({ body: { webhookId: 'wh_0000000000000000000000' } }));
    assert.equal(missing.statusCode, 404);
    assert.ok(missing.isNotFound());
    assert.equal(missing.code, 'webhook_not_found');
    assert.equal(missing.param, 'webhookId');
  });

  it('testWebhook reaches the receiver, signed, and reports success', async () => {
    needs(hook);
    const { result, got } = await deliveriesOf(() => webhooks.testWebhook({ body: { webhookId: hook._id } }));
    const { data } = result;
    assertShape(data, ATTEMPT, ['success', 'message'], 'testWebhook answer');
    assert.equal(data.success, true, JSON.stringify(data));
    assert.equal(got.length, 1, 'one delivery');
    const [delivery] = got;
    assert.equal(delivery.path, '/ok');
    assert.equal(delivery.headers['content-type'], 'application/json');
    assert.equal(delivery.headers['x-zernio-event'], 'webhook.test');
    assert.equal(delivery.headers['x-api-key'], 'k-2', 'the custom header as updated');
    assertSigned(delivery, secret);
    const event = JSON.parse(delivery.body);
    assert.equal(event.event, 'webhook.test');
    assert.equal(event.id, delivery.headers['x-zernio-event-id']);
    assert.equal(event.id, delivery.headers['webhook-id']);
    assert.ok(isTimestamp(event.timestamp));
    testEvent = { id: event.id, body: delivery.body };

    const { data: after } = await webhooks.getWebhookSettings();
    const fired = after.webhooks.find((w) => w._id === hook._id);
    assert.ok(isTimestamp(fired.lastFiredAt), `lastFiredAt after a success: ${fired.lastFiredAt}`);
    assert.equal(fired.failureCount, 0);
  });

  it('testWebhook reports a failed attempt as success: false', async () => {
    needs(failing);
    const { result, got } = await deliveriesOf(() => webhooks.testWebhook({ body: { webhookId: failing._id } }));
    assertShape(result.data, ATTEMPT, ['success', 'message'], 'testWebhook answer');
    assert.equal(result.data.success, false, JSON.stringify(result.data));
    assert.equal(got.length, 1);
    assert.equal(got[0].path, '/fail');
    assertSigned(got[0], 'my-own-secret');
  });

  it('getWebhookLogs lists the attempts, filtered and paged', async () => {
    needs(hook, failing, testEvent);
    const { data } = await webhooks.getWebhookLogs();
    assertShape(data.pagination, PAGINATION, Object.keys(PAGINATION), 'pagination');
    assert.equal(data.logs.length, 2);
    assert.equal(data.pagination.total, 2);
    assert.equal(data.pagination.skip, 0);
    data.logs.forEach((l, i) => assertShape(l, WEBHOOK_LOG, LOG_FIELDS, `logs[${i}]`));

    const ok = data.logs.find((l) => l.webhookId === hook._id);
    assert.equal(ok.webhookName, 'Orders v2');
    assert.equal(ok.eventId, testEvent.id);
    assert.equal(ok.event, 'webhook.test');
    assert.equal(ok.url, hook.url);
    assert.equal(ok.status, 'success');
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.responseBody, 'ok');
    assert.equal(ok.errorMessage, undefined, 'no error on a success');
    assert.equal(ok.attemptNumber, 1);
    assert.ok(ok.responseTime >= 0);
    assert.ok(isTimestamp(ok.createdAt));
    assert.deepEqual(ok.requestPayload, JSON.parse(testEvent.body), 'the payload as sent');
    const fail = data.logs.find((l) => l.webhookId === failing._id);
    assert.equal(fail.status, 'failed');
    assert.equal(fail.statusCode, 500);
    assert.equal(fail.responseBody, 'not today');
    assert.equal(typeof fail.errorMessage, 'string');
    for (const l of data.logs) assert.ok(!JSON.stringify(l).includes(secret), 'no secret in the log');

    const only = async (query) => (await webhooks.getWebhookLogs({ query })).data;
    const succeeded = await only({ status: 'success' });
    assert.deepEqual(succeeded.logs.map((l) => l.eventId), [testEvent.id]);
    assert.equal(succeeded.pagination.total, 1);
    assert.deepEqual((await only({ status: 'failed' })).logs.map((l) => l.webhookId), [failing._id]);
    assert.deepEqual((await only({ webhookId: failing._id })).logs.map((l) => l.webhookId), [failing._id]);
    assert.deepEqual((await only({ eventId: testEvent.id })).logs.map((l) => l.eventId), [testEvent.id]);
    assert.equal((await only({ event: 'webhook.test' })).logs.length, 2);
    assert.equal((await only({ event: 'message.read' })).pagination.total, 0);

    const first = await only({ limit: 1 });
    const second = await only({ limit: 1, skip: 1 });
    const third = await only({ limit: 1, skip: 2 });
    assert.deepEqual(data.pagination, { total: 2, limit: 50, skip: 0, pages: 1, hasMore: false });
    assert.deepEqual(first.pagination, { total: 2, limit: 1, skip: 0, pages: 2, hasMore: true });
    assert.deepEqual(second.pagination, { total: 2, limit: 1, skip: 1, pages: 2, hasMore: false });
    assert.equal(first.logs.length, 1);
    assert.equal(second.logs.length, 1);
    assert.equal(third.logs.length, 0);
    assert.deepEqual([first.logs[0], second.logs[0]], data.logs, 'the pages make up the whole log');
  });

  it('redeliverWebhookEvent sends the same bytes under the same event id', async () => {
    needs(hook, testEvent);
    const { result, got } = await deliveriesOf(() =>
      webhooks.redeliverWebhookEvent({ body: { webhookId: hook._id, eventId: testEvent.id } }),
    );
    assertShape(result.data, ATTEMPT, ['success', 'message'], 'redeliverWebhookEvent answer');
    assert.equal(result.data.success, true, JSON.stringify(result.data));
    assert.equal(got.length, 1);
    const [again] = got;
    assert.ok(again.body.equals(testEvent.body), 'the same bytes');
    assert.equal(again.headers['x-zernio-event-id'], testEvent.id);
    assert.equal(again.headers['webhook-id'], testEvent.id);
    assertSigned(again, secret);

    const { data } = await webhooks.getWebhookLogs({ query: { eventId: testEvent.id } });
    assert.deepEqual(data.logs.map((l) => l.attemptNumber), [2, 1], 'the replay is the next attempt, newest first');
    assert.ok(data.logs.every((l) => l.eventId === testEvent.id && l.status === 'success'));

    const unknown = await refusal(() =>
      webhooks.redeliverWebhookEvent({ body: { webhookId: hook._id, eventId: 'evt_0000000000000000000000' } }),
    );
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.param, 'eventId');
  });

  it('deleteWebhookSettings removes it (webhookId, or the deprecated id)', async () => {
    needs(hook, failing);
    const { data } = await webhooks.deleteWebhookSettings({ query: { webhookId: hook._id } });
    assert.deepEqual(data, { success: true });
    const legacy = await webhooks.deleteWebhookSettings({ query: { id: failing._id } });
    assert.deepEqual(legacy.data, { success: true });
    assert.deepEqual((await webhooks.getWebhookSettings()).data.webhooks, []);
    const again = await refusal(() => webhooks.deleteWebhookSettings({ query: { webhookId: hook._id } }));
    assert.equal(again.statusCode, 404);
    assert.equal(again.code, 'webhook_not_found');
  });
});
