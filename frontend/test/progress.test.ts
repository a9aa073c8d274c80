import { describe, expect, it } from 'vitest';
import { progressKey, toStatus } from '../src/client/creation';
import { formatBytes } from '../src/client/errors';
import {
  ProgressEstimator,
  describeProgress,
  formatAge,
  formatDuration,
  formatRate,
  type SampleStore,
} from '../src/client/progress';

class MapStore implements SampleStore {
  m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

describe('the copy estimator', () => {
  it('has no rate until the bytes move, then rate and time left over the window', () => {
    const e = new ProgressEstimator({ windowMs: 10_000 });
    expect(e.add(0, 0, 1_000_000)).toEqual({ bytesPerSecond: null, secondsLeft: null });
    expect(e.add(1_000, 0, 1_000_000)).toEqual({ bytesPerSecond: null, secondsLeft: null });
    const r = e.add(3_000, 200_000, 1_000_000);
    expect(r.bytesPerSecond).toBeCloseTo(200_000 / 3);
    expect(r.secondsLeft).toBeCloseTo(800_000 / (200_000 / 3));
  });

  it('forgets samples older than the window, keeping one before it as the baseline', () => {
    const e = new ProgressEstimator({ windowMs: 10_000 });
    e.add(0, 0, 10_000_000);
    e.add(5_000, 5_000_000, 10_000_000); // fast at first
    e.add(20_000, 5_100_000, 10_000_000); // then slow
    const r = e.add(30_000, 5_200_000, 10_000_000);
    // The window's baseline is the sample at 20 s: 100 kB in 10 s.
    expect(r.bytesPerSecond).toBeCloseTo(10_000);
    expect(r.secondsLeft).toBeCloseTo(4_800_000 / 10_000);
  });

  it('starts over when the bytes go back (a new attempt)', () => {
    const e = new ProgressEstimator();
    e.add(0, 0, 100);
    e.add(1_000, 50, 100);
    expect(e.add(2_000, 10, 100)).toEqual({ bytesPerSecond: null, secondsLeft: null });
    expect(e.count).toBe(1);
  });

  it('says 0 s left once everything is copied', () => {
    const e = new ProgressEstimator();
    e.add(0, 0, 100);
    expect(e.add(2_000, 100, 100)).toEqual({ bytesPerSecond: 50, secondsLeft: 0 });
  });

  it('keeps its samples in a store, so a reloaded page goes on with the same estimate', () => {
    const store = new MapStore();
    const before = new ProgressEstimator({ store, key: 'k' });
    before.add(0, 0, 1_000);
    before.add(1_000, 100, 1_000);
    // The page reloads: a new estimator over the same store sees the earlier samples.
    const after = new ProgressEstimator({ store, key: 'k' });
    expect(after.count).toBe(2);
    const r = after.add(2_000, 200, 1_000);
    expect(r.bytesPerSecond).toBeCloseTo(100);
    expect(r.secondsLeft).toBeCloseTo(8);
    after.clear();
    expect(store.m.has('k')).toBe(false);
    // A damaged stored value is ignored, not thrown.
    store.setItem('bad', '{not json');
    expect(new ProgressEstimator({ store, key: 'bad' }).count).toBe(0);
    store.setItem('odd', JSON.stringify([{ t: 'x', bytes: 1 }, { t: 5, bytes: 2 }]));
    expect(new ProgressEstimator({ store, key: 'odd' }).count).toBe(1);
  });

  it('keys the samples by migration and attempt', () => {
    expect(progressKey({ migrationId: 7n, attempts: 2 })).toBe('capsule-progress:7:2');
  });
});

describe('words for time and rates', () => {
  it('formats durations', () => {
    expect(formatDuration(0.2)).toBe('less than a second');
    expect(formatDuration(42)).toBe('42 s');
    expect(formatDuration(60)).toBe('1 min');
    expect(formatDuration(75)).toBe('1 min 15 s');
    expect(formatDuration(3_720)).toBe('1 h 2 min');
    expect(formatDuration(3 * 86_400 + 7_200)).toBe('3 days 2 h');
    expect(formatDuration(Number.NaN)).toBe('unknown');
  });

  it('formats rates', () => {
    expect(formatRate(512)).toBe('512 B/s');
    expect(formatRate(1_500_000)).toBe('1.5 MB/s');
    expect(formatRate(25_000)).toBe('25 kB/s');
    expect(formatRate(-1)).toBe('unknown');
  });

  it('formats ages', () => {
    const s = 1_000_000_000n;
    expect(formatAge(100n * s, 102n * s)).toBe('just now');
    expect(formatAge(0n, 90n * s)).toBe('1 min 30 s ago');
    expect(formatAge(10n * s, 0n)).toBe('just now');
  });

  it('describes a copy in one line', () => {
    const f = (n: number) => formatBytes(n);
    expect(describeProgress(1_200_000, 3_400_000, { bytesPerSecond: 250_000, secondsLeft: 8.8 }, f)).toBe(
      '1.2 MB of 3.4 MB · 250 kB/s · about 9 s left',
    );
    expect(describeProgress(0, 3_400_000, { bytesPerSecond: null, secondsLeft: null }, f)).toBe(
      '0 bytes of 3.4 MB · estimating time left…',
    );
    expect(describeProgress(100, 100, { bytesPerSecond: 50, secondsLeft: 0 }, f)).toBe(
      '100 bytes of 100 bytes · 50 B/s · all copied',
    );
  });
});

describe('the creation status', () => {
  it('carries the migration id', async () => {
    const { FakeBackend } = await import('./fake');
    const b = new FakeBackend([]);
    const r = await b.create_personal_canister();
    if (!('Ok' in r)) throw new Error('fake refused');
    expect(toStatus(r.Ok).migrationId).toBe(r.Ok.migration_id);
  });
});
