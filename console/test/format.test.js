// The page's times, durations and bodies (src/format.js). Run with the time zone set, as
// `make test` does: TZ=UTC node --test console/test/
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { clock, dateTime, duration, phone, pretty, relative } from '../src/format.js';

const NOW = Date.parse('2026-11-24T14:15:22Z');

test('a bubble shows its local hours and minutes', () => {
  assert.equal(clock('2026-11-24T09:05:59Z'), '09:05');
});

test('a date shows its year only when it is not this year', () => {
  assert.equal(dateTime('2026-11-25T14:15:22Z', NOW), '25 Nov 14:15');
  assert.equal(dateTime('2027-01-02T03:04:05Z', NOW), '2 Jan 2027 03:04');
});

test('a duration reads in its two largest units', () => {
  assert.equal(duration(42_000), '42 s');
  assert.equal(duration(4 * 60_000 + 59_000), '4 min');
  assert.equal(duration(23 * 3_600_000 + 5 * 60_000), '23 h 5 min');
  assert.equal(duration(3_600_000), '1 h');
  assert.equal(duration(6 * 86_400_000 + 23 * 3_600_000 + 59 * 60_000), '6 d 23 h');
  assert.equal(duration(-5), '0 s');
});

test('a time reads as how long until it, or how long ago it was', () => {
  assert.equal(relative('2026-11-25T14:15:22Z', NOW), 'in 1 d');
  assert.equal(relative('2026-11-24T14:11:22Z', NOW), '4 min ago');
});

test('a phone is shown with its plus', () => {
  assert.equal(phone('34688246216'), '+34688246216');
  assert.equal(phone(''), '');
});

test('a body is indented when it is JSON and left as it is when not', () => {
  assert.equal(pretty('{"a":1}'), '{\n  "a": 1\n}');
  assert.equal(pretty({ a: 1 }), '{\n  "a": 1\n}');
  assert.equal(pretty('ok'), 'ok');
});
