// Helpers over the generated IDL: find a method's types, list a variant's cases, and build a
// sample value of any candid type (round-tripped through the encoder, so it has exactly the
// shape a transport delivers).
import { IDL } from '@icp-sdk/core/candid';
import { Principal } from '@icp-sdk/core/principal';

export function method(idlFactory: IDL.InterfaceFactory, name: string): IDL.FuncClass {
  const f = idlFactory({ IDL })._fields.find(([n]) => n === name);
  if (!f) throw new Error(`no method ${name}`);
  return f[1];
}

/** The `Err` type of a method returning `variant { Ok : T; Err : E }`. */
export function errType(idlFactory: IDL.InterfaceFactory, name: string): IDL.VariantClass {
  const ret = method(idlFactory, name).retTypes[0];
  if (!(ret instanceof IDL.VariantClass)) throw new Error(`${name} does not return a variant`);
  const err = ret._fields.find(([n]) => n === 'Err')?.[1];
  if (!(err instanceof IDL.VariantClass)) throw new Error(`${name}'s Err is not a variant`);
  return err;
}

export function variantField(v: IDL.VariantClass, name: string): IDL.Type {
  const t = v._fields.find(([n]) => n === name)?.[1];
  if (!t) throw new Error(`no variant case ${name}`);
  return t;
}

class Sample extends IDL.Visitor<number, unknown> {
  override visitType<T>(t: IDL.Type<T>): unknown {
    throw new Error(`no sample for ${t.display()}`);
  }
  override visitBool(): unknown {
    return true;
  }
  override visitNull(): unknown {
    return null;
  }
  override visitText(_t: IDL.TextClass, depth: number): unknown {
    return `detail ${depth}`;
  }
  override visitNat(): unknown {
    return 7_000_000_000_000n;
  }
  override visitFixedNat(t: IDL.FixedNatClass): unknown {
    return t._bits > 32 ? 3n : 3;
  }
  override visitPrincipal(): unknown {
    return Principal.fromText('2vxsx-fae');
  }
  override visitVec<T>(_t: IDL.VecClass<T>, ty: IDL.Type<T>, depth: number): unknown {
    if (ty instanceof IDL.FixedNatClass && ty._bits === 8) return new Uint8Array([1, 2, 3]);
    return [ty.accept(this, depth + 1)];
  }
  override visitOpt<T>(_t: IDL.OptClass<T>, ty: IDL.Type<T>, depth: number): unknown {
    return depth > 4 ? [] : [ty.accept(this, depth + 1)];
  }
  override visitRecord(_t: IDL.RecordClass, fields: Array<[string, IDL.Type]>, depth: number): unknown {
    return Object.fromEntries(fields.map(([k, ty]) => [k, ty.accept(this, depth + 1)]));
  }
  override visitVariant(_t: IDL.VariantClass, fields: Array<[string, IDL.Type]>, depth: number): unknown {
    const [k, ty] = fields[0] as [string, IDL.Type];
    return { [k]: ty.accept(this, depth + 1) };
  }
  override visitRec<T>(_t: IDL.RecClass<T>, ty: IDL.ConstructType<T>, depth: number): unknown {
    return ty.accept(this, depth);
  }
}

/** A value of `t`, as a transport would decode it. */
export function sample(t: IDL.Type): unknown {
  const v = t.accept(new Sample(), 0);
  return IDL.decode([t], IDL.encode([t], [v]))[0];
}

/** One sample value per case of a variant type: `[caseName, value]`. */
export function everyCase(v: IDL.VariantClass): Array<[string, unknown]> {
  return v._fields.map(([name, ty]) => [name, IDL.decode([v], IDL.encode([v], [{ [name]: sample(ty) }]))[0]]);
}
