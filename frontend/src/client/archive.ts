// "Download my capsule": the capsule archive (format: manifests/README.md), written from a
// personal canister's manifest pages and blob chunks. A POSIX ustar file holding
// capsule-archive.json, manifest.json, capsule.json, memories.json, connections.json and
// blobs/<blake3 hex>; `manifest verify ARCHIVE` checks it offline.
import type { Principal } from '@icp-sdk/core/principal';
import type {
  BlobLeaf,
  CapsuleLeaf,
  ConnectionLeaf,
  ManifestHeader,
  ManifestPageReply,
  MemoryLeaf,
  PageCursor,
} from '../bindings/personal/personal.did';

/** A manifest read whole (every section, in manifest order). */
export interface FetchedManifest {
  header: ManifestHeader;
  capsule: CapsuleLeaf;
  connections: ConnectionLeaf[];
  memories: MemoryLeaf[];
  blobs: BlobLeaf[];
}

/** What the archive writer reads from a personal canister (its owner calling). */
export interface ArchiveSource {
  get_manifest_page(cursor: PageCursor): Promise<{ Ok: ManifestPageReply } | { Err: unknown }>;
  get_blob_chunk(hash: Uint8Array, index: bigint): Promise<{ Ok: Uint8Array | number[] } | { Err: unknown }>;
}

export class ArchiveError extends Error {}

export function hex(bytes: Uint8Array | number[]): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function ok<T>(r: { Ok: T } | { Err: unknown }, what: string): T {
  if ('Ok' in r) return r.Ok;
  throw new ArchiveError(`${what} failed: ${JSON.stringify(r.Err, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
}

/** Reads every page of the canister's manifest, in order. */
export async function fetchManifest(src: ArchiveSource): Promise<FetchedManifest> {
  let cursor: PageCursor | undefined = { section: { Capsule: null }, index: 0n };
  let header: ManifestHeader | undefined;
  let capsule: CapsuleLeaf | undefined;
  const connections: ConnectionLeaf[] = [];
  const memories: MemoryLeaf[] = [];
  const blobs: BlobLeaf[] = [];
  while (cursor) {
    const reply: ManifestPageReply = ok(await src.get_manifest_page(cursor), 'get_manifest_page');
    header = reply.header;
    const leaves = reply.page.leaves;
    if ('Capsule' in leaves) capsule = leaves.Capsule;
    else if ('Connections' in leaves) connections.push(...leaves.Connections);
    else if ('Memories' in leaves) memories.push(...leaves.Memories);
    else blobs.push(...leaves.Blobs);
    cursor = reply.page.next[0];
  }
  if (!header || !capsule) throw new ArchiveError('the manifest has no capsule page');
  return { header, capsule, connections, memories, blobs };
}

// ---------------------------------------------------------------- JSON (serde's form)

/** JSON text of `v`, with bigints written as plain numbers of every digit. */
export function toJson(v: unknown, indent = ''): string {
  const next = indent + '  ';
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => next + toJson(x, next)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, x]) => `${next}${JSON.stringify(k)}: ${toJson(x, next)}`).join(',\n')}\n${indent}}`;
}

const text = (p: Principal) => p.toText();

export function headerJson(h: ManifestHeader) {
  return {
    version: h.version,
    owner: text(h.owner),
    connection_count: h.connection_count,
    memory_count: h.memory_count,
    blob_count: h.blob_count,
    total_blob_bytes: h.total_blob_bytes,
    total_chunks: h.total_chunks,
    capsule_root: hex(h.capsule_root),
    connections_root: hex(h.connections_root),
    memories_root: hex(h.memories_root),
    blobs_root: hex(h.blobs_root),
    root: hex(h.root),
  };
}

export function capsuleJson(c: CapsuleLeaf) {
  return {
    owner: text(c.owner),
    name: c.name,
    bio: c.bio,
    created_at: c.created_at,
    updated_at: c.updated_at,
    settings: { public_profile: c.settings.public_profile, locale: c.settings.locale },
  };
}

export function connectionJson(c: ConnectionLeaf) {
  return {
    peer: text(c.peer),
    relationship: c.relationship,
    status: c.status,
    created_at: c.created_at,
    updated_at: c.updated_at,
  };
}

export function memoryJson(m: MemoryLeaf) {
  const enc = m.encryption[0];
  return {
    id: m.id,
    title: m.title,
    description: m.description,
    tags: m.tags,
    kind: m.kind,
    created_at: m.created_at,
    updated_at: m.updated_at,
    blobs: m.blobs.map((b) => ({ hash: hex(b.hash), size: b.size, mime_type: b.mime_type })),
    encryption: enc ? { scheme: enc.scheme, wrapped_key: hex(enc.wrapped_key) } : null,
  };
}

export function blobJson(b: BlobLeaf) {
  return { hash: hex(b.hash), size: b.size, chunk_hashes: b.chunk_hashes.map(hex) };
}

// ---------------------------------------------------------------- tar (ustar)

const BLOCK = 512;
const utf8 = new TextEncoder();

function octal(n: bigint | number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** The 512-byte ustar header of a regular file `name` of `size` bytes (mode 0644, mtime 0). */
export function tarHeader(name: string, size: bigint): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (s: string, at: number) => h.set(utf8.encode(s), at);
  const nameBytes = utf8.encode(name);
  if (nameBytes.length > 100) throw new ArchiveError(`entry name too long for ustar: ${name}`);
  if (size >= 8n ** 11n) throw new ArchiveError(`entry ${name} is too large for an ustar size field`);
  h.set(nameBytes, 0);
  put(octal(0o644, 8), 100);
  put(octal(0, 8), 108);
  put(octal(0, 8), 116);
  put(octal(size, 12), 124);
  put(octal(0, 12), 136);
  put('        ', 148); // the checksum field counts as spaces
  put('0', 156);
  put('ustar\0', 257);
  put('00', 263);
  const sum = h.reduce((a, b) => a + b, 0);
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

/** Writes tar entries to a list of byte parts (kept apart: a Blob is made of them). */
export class TarWriter {
  readonly parts: Uint8Array[] = [];

  add(name: string, data: Uint8Array): void {
    this.parts.push(tarHeader(name, BigInt(data.length)), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) this.parts.push(new Uint8Array(pad));
  }

  addJson(name: string, value: unknown): void {
    this.add(name, utf8.encode(toJson(value) + '\n'));
  }

  /** The end-of-archive marker (two zero blocks); returns the parts. */
  finish(): Uint8Array[] {
    this.parts.push(new Uint8Array(2 * BLOCK));
    return this.parts;
  }
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Progress of a download: blobs and bytes fetched so far. */
export interface ArchiveProgress {
  blobsDone: number;
  blobs: number;
  bytesDone: bigint;
  bytes: bigint;
}

/**
 * The archive of the capsule the canister holds: its manifest (every page) and every blob
 * (chunk by chunk, each checked against its size). Returns the tar's parts and the root.
 */
export async function writeArchive(
  src: ArchiveSource,
  onProgress?: (p: ArchiveProgress) => void,
): Promise<{ parts: Uint8Array[]; root: string; manifest: FetchedManifest }> {
  const m = await fetchManifest(src);
  const root = hex(m.header.root);
  const tar = new TarWriter();
  tar.addJson('capsule-archive.json', { format: 'capsule-archive', version: 1, root });
  tar.addJson('manifest.json', {
    header: headerJson(m.header),
    capsule: capsuleJson(m.capsule),
    connections: m.connections.map(connectionJson),
    memories: m.memories.map(memoryJson),
    blobs: m.blobs.map(blobJson),
  });
  tar.addJson('capsule.json', capsuleJson(m.capsule));
  tar.addJson('memories.json', m.memories.map(memoryJson));
  tar.addJson('connections.json', m.connections.map(connectionJson));
  const progress: ArchiveProgress = { blobsDone: 0, blobs: m.blobs.length, bytesDone: 0n, bytes: m.header.total_blob_bytes };
  for (const b of m.blobs) {
    const chunks: Uint8Array[] = [];
    for (let i = 0n; i < BigInt(b.chunk_hashes.length); i++) {
      const c = ok(await src.get_blob_chunk(b.hash, i), `get_blob_chunk ${hex(b.hash)} ${i}`);
      const bytes = c instanceof Uint8Array ? c : Uint8Array.from(c);
      chunks.push(bytes);
      progress.bytesDone += BigInt(bytes.length);
      onProgress?.({ ...progress });
    }
    const data = concat(chunks);
    if (BigInt(data.length) !== b.size) {
      throw new ArchiveError(`blob ${hex(b.hash)} came back with ${data.length} bytes, the manifest says ${b.size}`);
    }
    tar.add(`blobs/${hex(b.hash)}`, data);
    progress.blobsDone += 1;
    onProgress?.({ ...progress });
  }
  return { parts: tar.finish(), root, manifest: m };
}
