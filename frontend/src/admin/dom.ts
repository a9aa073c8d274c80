// Small DOM helpers of the admin console.

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page element #${id} is missing`);
  return el as T;
}

/** An element with attributes (`data-*`, `class`, ...) and children (text or elements). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | undefined> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** A `<div><dt>…</dt><dd>…</dd></div>` for a `<dl class="figures">`. */
export function figure(label: string, value: string, attrs: Record<string, string | undefined> = {}): HTMLElement {
  return el('div', {}, el('dt', {}, label), el('dd', attrs, value));
}

/** Shows a status line; errors in red. */
export function say(text: string, kind: 'info' | 'error' = 'info'): void {
  const m = $('message');
  m.textContent = text;
  m.dataset.kind = kind;
}

/** Asks for confirmation in the page's dialog; resolves `true` when confirmed. */
export function confirmAction(text: string, yes = 'Confirm'): Promise<boolean> {
  const dialog = $<HTMLDialogElement>('confirm');
  $('confirm-text').textContent = text;
  $('confirm-yes').textContent = yes;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}

/** `aaaaa-...-cai` → `aaaaa…-cai` for narrow cells; the full text goes in `title`. */
export function shortId(text: string): string {
  return text.length > 20 ? `${text.slice(0, 11)}…${text.slice(-8)}` : text;
}

export function formatTimeNs(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toLocaleString();
}
