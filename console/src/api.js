// The public API, exactly as any client calls it (openapi.yaml): the API key as a Bearer token,
// JSON in and out, the error envelope as an `ApiError`. The console calls nothing else.

/** The API's base path for a page at `pathname`: the page is `<base>/console`, the API is
 * `<base>/v1/…` (`<base>` is empty, or an API Gateway stage). */
export function apiBase(pathname) {
  return pathname.replace(/\/console\/?$/, '');
}

/** A refusal: the envelope's `error` is the message; `status`, `code`, `param`, `details` and
 * `platformError` as the API gave them. `status` 0: the API could not be reached. */
export class ApiError extends Error {
  constructor(status, envelope) {
    super(envelope.error);
    this.status = status;
    this.code = envelope.code ?? null;
    this.param = envelope.param ?? null;
    this.details = envelope.details ?? null;
    this.platformError = envelope.platformError ?? null;
  }
}

export class Api {
  /** The API at `base`, called with `key`. */
  constructor(base, key) {
    this.base = base;
    this.key = key;
  }

  /** One call; the answer's JSON, or an `ApiError`. */
  async call(method, path, { body, query, idempotencyKey } = {}) {
    const params = new URLSearchParams(Object.entries(query ?? {}).filter(([, v]) => v !== '' && v != null));
    const url = `${this.base}${path}${params.toString() ? `?${params}` : ''}`;
    const headers = { Authorization: `Bearer ${this.key}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch {
      throw new ApiError(0, { error: 'The API could not be reached: check the connection and try again.' });
    }
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!response.ok) {
      const envelope =
        json && typeof json.error === 'string'
          ? json
          : { error: `The API answered ${response.status} ${response.statusText}`.trim() + '.' };
      throw new ApiError(response.status, envelope);
    }
    return json;
  }

  sessions() {
    return this.call('GET', '/v1/whatsapp/sandbox/sessions');
  }

  createSession(phone) {
    return this.call('POST', '/v1/whatsapp/sandbox/sessions', { body: { phone } });
  }

  revoke(sessionId) {
    return this.call('DELETE', `/v1/whatsapp/sandbox/sessions/${encodeURIComponent(sessionId)}`);
  }

  /** A page of the conversation, newest first (`cursor`: the page after a `nextCursor`). */
  messages(limit, cursor) {
    return this.call('GET', '/v1/whatsapp/sandbox/messages', { query: { limit, cursor } });
  }

  /** A text to the session's phone; `idempotencyKey` makes a retried click send it once. */
  sendText(text, idempotencyKey) {
    return this.call('POST', '/v1/whatsapp/sandbox/messages', {
      body: { type: 'text', text: { body: text } },
      idempotencyKey,
    });
  }

  /** What a virtual phone does: `{type: "activate"}`, `{type: "text", text}` or
   * `{type: "interactive", id}`. */
  reply(sessionId, body) {
    return this.call('POST', `/v1/whatsapp/sandbox/sessions/${encodeURIComponent(sessionId)}/reply`, { body });
  }

  webhooks() {
    return this.call('GET', '/v1/webhooks/settings');
  }

  createWebhook(fields) {
    return this.call('POST', '/v1/webhooks/settings', { body: fields });
  }

  updateWebhook(webhookId, fields) {
    return this.call('PUT', '/v1/webhooks/settings', { body: { webhookId, ...fields } });
  }

  deleteWebhook(webhookId) {
    return this.call('DELETE', '/v1/webhooks/settings', { query: { webhookId } });
  }

  testWebhook(webhookId) {
    return this.call('POST', '/v1/webhooks/test', { body: { webhookId } });
  }

  /** A page of the delivery log: `{event, status, limit, skip}`. */
  logs(query) {
    return this.call('GET', '/v1/webhooks/logs', { query });
  }

  redeliver(webhookId, eventId) {
    return this.call('POST', '/v1/webhooks/logs/redeliver', { body: { webhookId, eventId } });
  }
}
