// Throughput and time left of a copy, from byte counts seen over time; and the words for
// durations, rates and ages. The samples can be kept in a Storage (localStorage) under the
// migration's key, so that a page reloaded mid-migration goes on with the same estimate.

/** A byte count seen at a time (milliseconds, the page's clock). */
export interface Sample {
  t: number;
  bytes: number;
}

export interface Estimate {
  /** Bytes per second over the window, `null` until two samples show movement. */
  bytesPerSecond: number | null;
  /** Seconds left at that rate, `null` when unknown; 0 when done. */
  secondsLeft: number | null;
}

/** What a {@link ProgressEstimator} needs of a Storage (localStorage, sessionStorage, a Map). */
export interface SampleStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface EstimatorOptions {
  /** Samples older than this (ms before the newest) are dropped. */
  windowMs?: number;
  /** Most samples kept. */
  maxSamples?: number;
  /** Where samples are kept across reloads, under `key`. */
  store?: SampleStore | null;
  key?: string;
}

/**
 * Estimates throughput over a sliding window of samples: the bytes between the oldest and the
 * newest sample in the window, divided by the time between them.
 */
export class ProgressEstimator {
  private samples: Sample[] = [];
  private readonly windowMs: number;
  private readonly maxSamples: number;
  private readonly store: SampleStore | null;
  private readonly key: string;

  constructor(opts: EstimatorOptions = {}) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxSamples = opts.maxSamples ?? 64;
    this.store = opts.store ?? null;
    this.key = opts.key ?? 'progress';
    this.samples = this.load();
  }

  /** Records `bytes` done at time `t` (ms); returns the estimate for `total` bytes. */
  add(t: number, bytes: number, total: number): Estimate {
    const last = this.samples[this.samples.length - 1];
    if (last && (bytes < last.bytes || t < last.t)) this.samples = []; // a new attempt, or a clock jump
    if (!last || bytes !== last.bytes || t - last.t > 1_000) this.samples.push({ t, bytes });
    const oldest = t - this.windowMs;
    // Keep one sample at or before the window's start, so a slow copy still has a baseline.
    while (this.samples.length > 2 && (this.samples[1] as Sample).t <= oldest) this.samples.shift();
    while (this.samples.length > this.maxSamples) this.samples.shift();
    this.save();
    return this.estimate(total);
  }

  estimate(total: number): Estimate {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last) return { bytesPerSecond: null, secondsLeft: null };
    if (last.bytes >= total && total > 0) {
      const dt = (last.t - first.t) / 1000;
      return { bytesPerSecond: dt > 0 ? (last.bytes - first.bytes) / dt : null, secondsLeft: 0 };
    }
    const dt = (last.t - first.t) / 1000;
    const db = last.bytes - first.bytes;
    if (dt <= 0 || db <= 0) return { bytesPerSecond: null, secondsLeft: null };
    const rate = db / dt;
    return { bytesPerSecond: rate, secondsLeft: Math.max(0, (total - last.bytes) / rate) };
  }

  get count(): number {
    return this.samples.length;
  }

  /** Forgets the samples (and their stored copy): the copy ended. */
  clear(): void {
    this.samples = [];
    this.store?.removeItem(this.key);
  }

  private load(): Sample[] {
    try {
      const raw = this.store?.getItem(this.key);
      if (!raw) return [];
      const parsed = JSON.parse(raw) as unknown;
      if (!Array.isArray(parsed)) return [];
      return parsed.filter(
        (s): s is Sample => typeof s?.t === 'number' && typeof s?.bytes === 'number' && Number.isFinite(s.t),
      );
    } catch {
      return [];
    }
  }

  private save(): void {
    try {
      this.store?.setItem(this.key, JSON.stringify(this.samples));
    } catch {
      // A full or unavailable storage only costs the estimate after a reload.
    }
  }
}

/** `75` → `"1 min 15 s"`; `3700` → `"1 h 2 min"`; under a second → `"less than a second"`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'unknown';
  if (seconds < 1) return 'less than a second';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} days ${h % 24} h` : `${d} days`;
}

/** `1_500_000` → `"1.5 MB/s"`. */
export function formatRate(bytesPerSecond: number): string {
  const v = bytesPerSecond;
  if (!Number.isFinite(v) || v < 0) return 'unknown';
  if (v < 1000) return `${Math.round(v)} B/s`;
  const units = ['kB/s', 'MB/s', 'GB/s'];
  let x = v;
  let u = -1;
  while (x >= 1000 && u < units.length - 1) {
    x /= 1000;
    u++;
  }
  return `${x.toFixed(x < 10 ? 1 : 0)} ${units[u]}`;
}

/** How long ago `thenNs` was at `nowNs` (both nanoseconds since the epoch), e.g. `"5 min ago"`. */
export function formatAge(thenNs: bigint, nowNs: bigint): string {
  const s = Number((nowNs - thenNs) / 1_000_000_000n);
  if (s < 0) return 'just now';
  if (s < 5) return 'just now';
  return `${formatDuration(s)} ago`;
}

/** A progress line: `"1.2 MB of 3.4 MB · 250 kB/s · about 9 s left"`. */
export function describeProgress(done: number, total: number, e: Estimate, formatBytes: (n: number) => string): string {
  const parts = [`${formatBytes(done)} of ${formatBytes(total)}`];
  if (e.bytesPerSecond !== null) parts.push(formatRate(e.bytesPerSecond));
  if (e.secondsLeft === 0 && total > 0 && done >= total) parts.push('all copied');
  else if (e.secondsLeft !== null) parts.push(`about ${formatDuration(e.secondsLeft)} left`);
  else if (done < total) parts.push('estimating time left…');
  return parts.join(' · ');
}
