// Candid text of a value, printed from its IDL type (as `dfx canister call` prints a reply):
// what `manifest show` and `manifest diff` read. Texts are escaped, blobs printed as
// `blob "\hh..."`, field and variant names as in the .did.
import { IDL } from '@icp-sdk/core/candid';
import type { Principal } from '@icp-sdk/core/principal';

const ID = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Candid's keywords may not be bare field names.
const KEYWORDS = new Set([
  'blob', 'bool', 'composite_query', 'empty', 'false', 'float32', 'float64', 'func', 'import', 'int', 'int8',
  'int16', 'int32', 'int64', 'nat', 'nat8', 'nat16', 'nat32', 'nat64', 'null', 'oneway', 'opt', 'principal',
  'query', 'record', 'reserved', 'service', 'text', 'true', 'type', 'variant', 'vec',
]);

function label(name: string): string {
  if (/^_\d+_$/.test(name)) return name.slice(1, -1);
  return ID.test(name) && !KEYWORDS.has(name) ? name : quote(name);
}

/** A candid text literal: `"`, `\` and control characters escaped, the rest as UTF-8 text. */
export function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return `${out}"`;
}

function blob(bytes: Uint8Array | number[]): string {
  let out = 'blob "';
  for (const b of bytes) out += `\\${b.toString(16).padStart(2, '0')}`;
  return `${out}"`;
}

class Printer extends IDL.Visitor<unknown, string> {
  override visitBool(_t: IDL.BoolClass, v: unknown): string {
    return v ? 'true' : 'false';
  }
  override visitNull(): string {
    return 'null';
  }
  override visitReserved(): string {
    return 'null';
  }
  override visitText(_t: IDL.TextClass, v: unknown): string {
    return quote(v as string);
  }
  override visitNumber<T>(_t: IDL.PrimitiveType<T>, v: unknown): string {
    return String(v);
  }
  override visitFloat(_t: IDL.FloatClass, v: unknown): string {
    const s = String(v);
    return /[.eE]|Infinity|NaN/.test(s) ? s : `${s}.0`;
  }
  override visitPrincipal(_t: IDL.PrincipalClass, v: unknown): string {
    return `principal "${(v as Principal).toText()}"`;
  }
  override visitVec<T>(_t: IDL.VecClass<T>, ty: IDL.Type<T>, v: unknown): string {
    if (ty instanceof IDL.FixedNatClass && ty._bits === 8) return blob(v as Uint8Array);
    const items = Array.from(v as Iterable<unknown>, (x) => ty.accept(this, x));
    return `vec {${items.join('; ')}}`;
  }
  override visitOpt<T>(_t: IDL.OptClass<T>, ty: IDL.Type<T>, v: unknown): string {
    const o = v as [] | [unknown];
    return o.length === 0 ? 'null' : `opt ${ty.accept(this, o[0])}`;
  }
  override visitRecord(_t: IDL.RecordClass, fields: Array<[string, IDL.Type]>, v: unknown): string {
    const r = v as Record<string, unknown>;
    return `record {${fields.map(([k, ty]) => `${label(k)} = ${ty.accept(this, r[k])}`).join('; ')}}`;
  }
  override visitTuple<T extends unknown[]>(_t: IDL.TupleClass<T>, components: IDL.Type[], v: unknown): string {
    const a = v as unknown[];
    return `record {${components.map((ty, i) => ty.accept(this, a[i])).join('; ')}}`;
  }
  override visitVariant(_t: IDL.VariantClass, fields: Array<[string, IDL.Type]>, v: unknown): string {
    const r = v as Record<string, unknown>;
    for (const [k, ty] of fields) {
      if (Object.prototype.hasOwnProperty.call(r, k)) {
        return ty instanceof IDL.NullClass
          ? `variant {${label(k)}}`
          : `variant {${label(k)} = ${ty.accept(this, r[k])}}`;
      }
    }
    throw new TypeError(`not a value of ${_t.display()}: no known variant in ${Object.keys(r).join(', ')}`);
  }
  override visitRec<T>(_t: IDL.RecClass<T>, ty: IDL.ConstructType<T>, v: unknown): string {
    return ty.accept(this, v);
  }
  override visitType<T>(t: IDL.Type<T>): string {
    throw new TypeError(`cannot print candid type ${t.display()}`);
  }
}

/** One value of type `ty` as candid text. */
export function candidValue(ty: IDL.Type, value: unknown): string {
  return ty.accept(new Printer(), value);
}

/** Arguments (or a reply) as candid text: `(v1, v2)`. */
export function candidArgs(types: IDL.Type[], values: unknown[]): string {
  return `(${types.map((t, i) => candidValue(t, values[i])).join(', ')})`;
}
