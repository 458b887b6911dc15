// How times, durations and phones read on the page. Pure: no DOM, no clock of its own (the
// callers pass `now`), so `console/test/format.test.js` runs it in Node.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n) => String(n).padStart(2, '0');

/** A bubble's time, local `HH:MM`. */
export function clock(iso) {
  const d = new Date(iso);
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** A date and time, local: `25 Nov 14:15`, with the year when it is not `now`'s. */
export function dateTime(iso, now = Date.now()) {
  const d = new Date(iso);
  const year = d.getFullYear() === new Date(now).getFullYear() ? '' : ` ${d.getFullYear()}`;
  return `${d.getDate()} ${MONTHS[d.getMonth()]}${year} ${clock(iso)}`;
}

/** A span of time in words a person reads at a glance: `6 d 23 h`, `23 h 5 min`, `4 min`, `42 s`. */
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return h > 0 ? `${d} d ${h} h` : `${d} d`;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  if (m > 0) return `${m} min`;
  return `${s} s`;
}

/** How long until `iso`, or how long ago it was: `in 23 h 5 min`, `4 min ago`. */
export function relative(iso, now = Date.now()) {
  const delta = new Date(iso).getTime() - now;
  return delta >= 0 ? `in ${duration(delta)}` : `${duration(-delta)} ago`;
}

/** A phone as the API gives it (digits, no `+`), for people: `+34688246216`. */
export function phone(digits) {
  return digits ? `+${digits}` : '';
}

/** A JSON value as it was sent, indented; text that is not JSON as it is. */
export function pretty(value) {
  if (typeof value === 'string') {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}
