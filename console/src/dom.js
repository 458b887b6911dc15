// Building and updating the page. Text always goes in as text (never as HTML), so a message
// or a response body cannot become markup.

/** An element: `h('p', {class: 'x', 'aria-label': 'y'}, 'text', child)`; `on<event>` props
 * become listeners; `null`, `undefined` and `false` props and children are left out. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

/** A small icon drawn with SVG paths (no style attribute, so the CSP allows it), hidden from
 * assistive technology: the element that holds it carries the words. */
export function icon(paths, viewBox = '0 0 16 11') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', viewBox);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of paths) {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

/** The element with this id. */
export const byId = (id) => document.getElementById(id);

/** Shows `message` as the error of a field (its `<id>-error` element, which the field names in
 * `aria-describedby` and which is a `role="alert"`), or clears it. */
export function fieldError(field, message) {
  const target = byId(`${field.id}-error`);
  if (target) target.textContent = message ?? '';
  if (message) field.setAttribute('aria-invalid', 'true');
  else field.removeAttribute('aria-invalid');
}

/** Shows text in a status or alert element (empty clears it). */
export function say(id, message) {
  byId(id).textContent = message ?? '';
}

/**
 * Runs `action` once at a time for a form or button (a second click while it runs does
 * nothing), marking it busy meanwhile. The control stays enabled, so keyboard focus stays on it.
 */
export async function once(control, action) {
  if (control.getAttribute('aria-busy') === 'true') return;
  control.setAttribute('aria-busy', 'true');
  try {
    await action();
  } finally {
    control.removeAttribute('aria-busy');
  }
}

/**
 * Makes `list`'s children the nodes of `items`, in order, touching only what changed: a node
 * is made once per key (`make(item)`) and updated in place (`update(node, item)`), so a live
 * region announces only new messages and focus inside a node survives a refresh.
 */
export function keyed(list, items, key, make, update) {
  const old = new Map([...list.children].map((node) => [node.dataset.key, node]));
  let at = list.firstElementChild;
  for (const item of items) {
    const k = key(item);
    let node = old.get(k);
    if (node) {
      old.delete(k);
      update(node, item);
    } else {
      node = make(item);
      node.dataset.key = k;
    }
    if (node !== at) list.insertBefore(node, at);
    else at = at.nextElementSibling;
  }
  for (const node of old.values()) node.remove();
}
