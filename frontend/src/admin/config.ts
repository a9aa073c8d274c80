// The settings form, built from the FactoryConfig type of the generated IDL (so a field the
// backend adds appears without a change here). Values are parsed and checked against their
// candid type before anything is sent; the backend's own checks answer with InvalidConfig.
import { IDL } from '@icp-sdk/core/candid';
import { Principal } from '@icp-sdk/core/principal';
import { idlFactory as backendIdl } from '../bindings/backend/backend.did';
import type { FactoryConfig } from '../client/types';
import { el } from './dom';

/** A field that could not be read, as a sentence. */
export class ConfigInputError extends Error {
  override readonly name = 'ConfigInputError';
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`The setting ${field} ${reason}.`);
  }
}

export function configType(): IDL.RecordClass {
  const service = backendIdl({ IDL });
  const func = service._fields.find(([n]) => n === 'admin_set_config')?.[1];
  const t = func?.argTypes[0];
  if (!(t instanceof IDL.RecordClass)) throw new Error('the bindings have no admin_set_config(FactoryConfig)');
  return t;
}

function maxOf(t: IDL.Type): bigint | null {
  if (t instanceof IDL.FixedNatClass) return (1n << BigInt(t._bits)) - 1n;
  return null;
}

/** Reads `text` as a value of candid type `t` (nat, natN, bool, principal, text, opt of these). */
export function parseField(field: string, t: IDL.Type, text: string, checked = false): unknown {
  if (t instanceof IDL.OptClass) {
    return text.trim() === '' ? [] : [parseField(field, t._type, text)];
  }
  if (t instanceof IDL.BoolClass) return checked;
  if (t instanceof IDL.TextClass) return text;
  if (t instanceof IDL.PrincipalClass) {
    try {
      return Principal.fromText(text.trim());
    } catch {
      throw new ConfigInputError(field, 'must be a principal (e.g. aaaaa-aa)');
    }
  }
  if (t instanceof IDL.NatClass || t instanceof IDL.FixedNatClass) {
    const s = text.trim().replace(/[_,\s]/g, '');
    if (!/^\d+$/.test(s)) throw new ConfigInputError(field, 'must be a whole number of 0 or more');
    const v = BigInt(s);
    const max = maxOf(t);
    if (max !== null && v > max) throw new ConfigInputError(field, `must be at most ${max}`);
    return t instanceof IDL.FixedNatClass && t._bits <= 32 ? Number(v) : v;
  }
  throw new ConfigInputError(field, `has a type this form cannot edit (${t.display()})`);
}

function show(t: IDL.Type, v: unknown): string {
  if (t instanceof IDL.OptClass) {
    const o = v as [] | [unknown];
    return o.length ? show(t._type, o[0]) : '';
  }
  if (t instanceof IDL.PrincipalClass) return (v as Principal).toText();
  return String(v);
}

function hint(t: IDL.Type): string {
  if (t instanceof IDL.OptClass) return `${hint(t._type)}; empty for the default`;
  return t.display();
}

/** Renders the form's inputs for `config` into `root`. */
export function renderConfigForm(root: HTMLElement, config: FactoryConfig): void {
  // Switches first, then the figures by name, then nested records (candid orders by field id).
  const rank = (ft: IDL.Type) => (ft instanceof IDL.BoolClass ? 0 : ft instanceof IDL.RecordClass ? 2 : 1);
  const ordered = (t: IDL.RecordClass) =>
    [...t._fields].sort(([a, ta], [b, tb]) => rank(ta) - rank(tb) || a.localeCompare(b));
  const build = (t: IDL.RecordClass, value: Record<string, unknown>, path: string): HTMLElement[] =>
    ordered(t).map(([name, ft]) => {
      const key = path ? `${path}.${name}` : name;
      if (ft instanceof IDL.RecordClass) {
        const fs = el('fieldset', { 'data-field': key }, el('legend', {}, key));
        fs.append(...build(ft, value[name] as Record<string, unknown>, key));
        return fs;
      }
      if (ft instanceof IDL.BoolClass) {
        const input = el('input', { type: 'checkbox', name: key, 'data-field': key });
        input.checked = Boolean(value[name]);
        return el('label', { class: 'bool' }, input, key);
      }
      const input = el('input', {
        name: key,
        'data-field': key,
        title: hint(ft),
        inputmode: 'numeric',
        placeholder: ft instanceof IDL.OptClass ? 'default' : undefined,
      });
      input.value = show(ft, value[name]);
      return el('label', {}, key, input, el('span', { class: 'field-error', 'data-error-for': key }));
    });
  root.replaceChildren(...build(configType(), config as unknown as Record<string, unknown>, ''));
}

/** Reads the form back into a FactoryConfig; marks and throws on the first bad field. */
export function readConfigForm(root: HTMLElement): FactoryConfig {
  for (const e of root.querySelectorAll('[data-error-for]')) e.textContent = '';
  for (const e of root.querySelectorAll('input')) e.removeAttribute('aria-invalid');
  const read = (t: IDL.RecordClass, path: string): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [name, ft] of t._fields) {
      const key = path ? `${path}.${name}` : name;
      if (ft instanceof IDL.RecordClass) {
        out[name] = read(ft, key);
        continue;
      }
      const input = root.querySelector<HTMLInputElement>(`input[data-field="${key}"]`);
      if (!input) throw new ConfigInputError(key, 'is missing from the form');
      try {
        out[name] = parseField(key, ft, input.value, input.checked);
      } catch (e) {
        input.setAttribute('aria-invalid', 'true');
        const slot = root.querySelector(`[data-error-for="${key}"]`);
        if (slot && e instanceof Error) slot.textContent = e.message;
        input.focus();
        throw e;
      }
    }
    return out;
  };
  return read(configType(), '') as unknown as FactoryConfig;
}
