// Uploading a file as a blob and adding a memory that references it, through the capsule API
// (the same on the backend and on a personal canister); reading a blob back.
import { unwrapCapsule } from './errors';
import type { BlobRef, CapsuleService, Memory, MemoryKind, MemoryPage } from './types';

/** Blobs move in 256 KiB chunks, aligned (chunk i covers bytes [i·CHUNK, (i+1)·CHUNK)). */
export const CHUNK_SIZE = 256 * 1024;

export function chunkCount(size: number): number {
  return Math.ceil(size / CHUNK_SIZE);
}

/**
 * Uploads `bytes` as a blob: begin_blob_upload, one put_blob_chunk per 256 KiB chunk (bytes as
 * candid `blob`), finish_blob_upload. Aborts the upload if a step fails. Returns the blob's
 * reference for a memory. `onStart` is called once the upload is open, `onProgress` after each
 * chunk with the bytes the canister has accepted so far.
 */
export async function uploadBlob(
  actor: CapsuleService,
  bytes: Uint8Array,
  mimeType: string,
  onProgress?: (bytesSent: number, total: number) => void,
  onStart?: (total: number) => void,
): Promise<BlobRef> {
  const size = bytes.length;
  const upload = unwrapCapsule(await actor.begin_blob_upload({ size: BigInt(size), expected_hash: [] }));
  onStart?.(size);
  try {
    for (let i = 0; i < chunkCount(size); i++) {
      const chunk = bytes.subarray(i * CHUNK_SIZE, Math.min(size, (i + 1) * CHUNK_SIZE));
      unwrapCapsule(await actor.put_blob_chunk(upload, BigInt(i), chunk));
      onProgress?.(Math.min(size, (i + 1) * CHUNK_SIZE), size);
    }
    const blob = unwrapCapsule(await actor.finish_blob_upload(upload));
    return { hash: blob.hash, size: blob.size, mime_type: mimeType };
  } catch (e) {
    await actor.abort_blob_upload(upload).catch(() => undefined);
    throw e;
  }
}

export interface NewMemory {
  title: string;
  description?: string;
  kind?: MemoryKind;
  tags?: string[];
  file?: { bytes: Uint8Array; mimeType: string };
}

export function kindForMime(mime: string): MemoryKind {
  if (mime.startsWith('image/')) return { Photo: null };
  if (mime.startsWith('video/')) return { Video: null };
  if (mime.startsWith('audio/')) return { Audio: null };
  if (mime.startsWith('text/') || mime === 'application/pdf') return { Document: null };
  return { Other: null };
}

/** Uploads the memory's file (if any) and adds the memory. */
export async function addMemoryWithFile(
  actor: CapsuleService,
  m: NewMemory,
  onProgress?: (bytesSent: number, total: number) => void,
): Promise<Memory> {
  const blobs = m.file ? [await uploadBlob(actor, m.file.bytes, m.file.mimeType, onProgress)] : [];
  return unwrapCapsule(
    await actor.add_memory({
      title: m.title,
      description: m.description ?? '',
      kind: m.kind ?? (m.file ? kindForMime(m.file.mimeType) : { Note: null }),
      tags: m.tags ?? [],
      encryption: [],
      blobs,
    }),
  );
}

/** Reads a whole blob back, chunk by chunk (get_blob_chunk). */
export async function readBlob(actor: CapsuleService, ref: Pick<BlobRef, 'hash' | 'size'>): Promise<Uint8Array> {
  const size = Number(ref.size);
  const out = new Uint8Array(size);
  for (let i = 0; i < chunkCount(size); i++) {
    const chunk = unwrapCapsule(await actor.get_blob_chunk(ref.hash, BigInt(i)));
    out.set(chunk, i * CHUNK_SIZE);
  }
  return out;
}

/** All memories of the capsule, following the pages. */
export async function listAllMemories(actor: CapsuleService, pageSize = 50): Promise<Memory[]> {
  const all: Memory[] = [];
  let after: [] | [bigint] = [];
  for (;;) {
    const page: MemoryPage = unwrapCapsule(await actor.list_memories({ start_after: after, limit: pageSize }));
    all.push(...page.items);
    const next = page.next[0];
    if (next === undefined || page.items.length === 0) return all;
    after = [next];
  }
}

/** Whether a blob of `mime` can be shown as an image thumbnail by a browser. */
export function isImage(mime: string): boolean {
  return /^image\/(png|jpeg|gif|webp|avif|bmp|svg\+xml)$/i.test(mime.trim());
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
