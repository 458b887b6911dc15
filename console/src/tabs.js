// Tabs as the WAI-ARIA Authoring Practices describe them: a `tablist` of `tab`s, each
// `aria-controls` its `tabpanel`; the selected tab alone is in the tab order, and the arrow keys,
// Home and End move between tabs (selecting as they go).

/** Wires the tabs of `tablist`; `changed(id)` hears each selection. Returns `select(id)`. */
export function tabs(tablist, changed) {
  const all = [...tablist.querySelectorAll('[role="tab"]')];
  const select = (tab, focus) => {
    for (const t of all) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute('aria-controls')).hidden = !on;
    }
    if (focus) tab.focus();
    changed(tab.id);
  };
  tablist.addEventListener('click', (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) select(tab, false);
  });
  tablist.addEventListener('keydown', (event) => {
    const at = all.indexOf(document.activeElement);
    if (at < 0) return;
    const next = {
      ArrowRight: all[(at + 1) % all.length],
      ArrowLeft: all[(at - 1 + all.length) % all.length],
      Home: all[0],
      End: all[all.length - 1],
    }[event.key];
    if (!next) return;
    event.preventDefault();
    select(next, true);
  });
  return (id) => select(all.find((t) => t.id === id) ?? all[0], false);
}
