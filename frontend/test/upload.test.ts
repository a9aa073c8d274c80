import { describe, expect, it } from 'vitest';
import { CapsuleCallError } from '../src/client/errors';
import { addMemoryWithFile, chunkCount, kindForMime, listAllMemories, readBlob, uploadBlob, CHUNK_SIZE } from '../src/client/upload';
import { BACKEND_ID, FakeCapsule } from './fake';

function bytes(n: number): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 31 + 7) % 256);
}

describe('uploads', () => {
  it('sends 256 KiB chunks in order, the last one short', async () => {
    const c = new FakeCapsule(BACKEND_ID, 'c');
    const data = bytes(2 * CHUNK_SIZE + 1000);
    const progress: number[] = [];
    const ref = await uploadBlob(c, data, 'image/png', (sent) => progress.push(sent));
    expect(c.calls.filter((x) => x.startsWith('put'))).toEqual([
      `put_blob_chunk 0 ${CHUNK_SIZE}`,
      `put_blob_chunk 1 ${CHUNK_SIZE}`,
      'put_blob_chunk 2 1000',
    ]);
    expect(progress).toEqual([CHUNK_SIZE, 2 * CHUNK_SIZE, data.length]);
    expect(ref.size).toBe(BigInt(data.length));
    expect(ref.mime_type).toBe('image/png');
    expect(await readBlob(c, ref)).toEqual(data);
  });

  it('aborts the upload when a chunk is refused, and throws the error as a sentence', async () => {
    const c = new FakeCapsule(BACKEND_ID, 'c');
    c.failPutAt = 1;
    const e = await uploadBlob(c, bytes(CHUNK_SIZE + 1), 'text/plain').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CapsuleCallError);
    expect((e as Error).message).toBe(
      'Too many uploads are in progress on the service right now; try again in a moment.',
    );
    expect(c.aborted).toEqual([1n]);
  });

  it('adds a memory referencing the uploaded file, and lists it back across pages', async () => {
    const c = new FakeCapsule(BACKEND_ID, 'c');
    for (let i = 0; i < 3; i++)
      await addMemoryWithFile(c, { title: `m${i}`, file: { bytes: bytes(10 + i), mimeType: 'image/jpeg' } });
    await addMemoryWithFile(c, { title: 'note' });
    const all = await listAllMemories(c, 2);
    expect(all.map((m) => m.title)).toEqual(['m0', 'm1', 'm2', 'note']);
    expect(all[0]?.kind).toEqual({ Photo: null });
    expect(all[3]?.kind).toEqual({ Note: null });
    expect(all[3]?.blobs).toEqual([]);
    const m2 = all[2];
    expect(await readBlob(c, m2!.blobs[0]!)).toEqual(bytes(12));
  });

  it('counts chunks and picks memory kinds', () => {
    expect([0, 1, CHUNK_SIZE, CHUNK_SIZE + 1].map(chunkCount)).toEqual([0, 1, 1, 2]);
    expect(kindForMime('video/mp4')).toEqual({ Video: null });
    expect(kindForMime('audio/ogg')).toEqual({ Audio: null });
    expect(kindForMime('application/pdf')).toEqual({ Document: null });
    expect(kindForMime('application/zip')).toEqual({ Other: null });
  });
});
