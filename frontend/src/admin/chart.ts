// The reserve over time as an inline SVG: a step line through the snapshots (the reserve holds
// its value until the next change), with the threshold and the low-water mark.
import { formatCycles } from '../client/errors';
import type { ReserveSnapshot } from '../client/types';

const SVG = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 220;
const PAD = { left: 64, right: 12, top: 12, bottom: 28 };

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export interface ChartPoint {
  /** Milliseconds since the epoch. */
  t: number;
  reserve: number;
}

/**
 * The points the chart draws: every snapshot (times are the backend's clock), and the current
 * reserve when it differs from the newest snapshot (or there is none; then at `nowMs`).
 */
export function chartPoints(snapshots: ReserveSnapshot[], current: bigint, nowMs: number): ChartPoint[] {
  const pts = snapshots.map((s) => ({ t: Number(s.at / 1_000_000n), reserve: Number(s.reserve) }));
  const last = snapshots[snapshots.length - 1];
  if (!last) return [{ t: nowMs, reserve: Number(current) }];
  if (last.reserve !== current) pts.push({ t: Number(last.at / 1_000_000n), reserve: Number(current) });
  return pts;
}

/** The smallest of 1, 2, 5 × 10^k at least `v`. */
export function niceCeil(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** The chart's `<svg>`: `data-points` and `data-last` say what it drew (for tests and tools). */
export function reserveChart(points: ChartPoint[], marks: { threshold: bigint; lowWater: bigint }): SVGSVGElement {
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'The reserve over time' });
  const t0 = Math.min(...points.map((p) => p.t));
  const t1 = Math.max(...points.map((p) => p.t), t0 + 1);
  const yMax = niceCeil(Math.max(...points.map((p) => p.reserve), Number(marks.lowWater), Number(marks.threshold), 1) * 1.05);
  const x = (t: number) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);

  // Axes: 0, the middle and the top in T cycles; the first and last time.
  for (const v of [0, yMax / 2, yMax]) {
    root.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), stroke: '#e3e3e8' }));
    const label = svg('text', { x: PAD.left - 4, y: y(v) + 4, 'text-anchor': 'end' });
    label.textContent = formatCycles(v).replace(' cycles', '');
    root.append(label);
  }
  for (const [t, anchor] of [
    [t0, 'start'],
    [t1, 'end'],
  ] as const) {
    const label = svg('text', { x: x(t), y: H - 8, 'text-anchor': anchor });
    label.textContent = t1 - t0 > 86_400_000 ? new Date(t).toLocaleString() : new Date(t).toLocaleTimeString();
    root.append(label);
  }
  for (const [value, name] of [
    [marks.lowWater, 'low-water mark'],
    [marks.threshold, 'threshold'],
  ] as const) {
    const v = Number(value);
    if (v <= 0) continue;
    const line = svg('line', { class: 'threshold', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) });
    const title = svg('title', {});
    title.textContent = `${name}: ${formatCycles(value)}`;
    line.append(title);
    root.append(line);
  }

  // The step line: horizontal to the next point's time, then vertical to its value.
  let d = '';
  points.forEach((p, i) => {
    if (i === 0) d += `M${x(p.t).toFixed(1)},${y(p.reserve).toFixed(1)}`;
    else d += `H${x(p.t).toFixed(1)}V${y(p.reserve).toFixed(1)}`;
  });
  const first = points[0] as ChartPoint;
  const last = points[points.length - 1] as ChartPoint;
  root.append(svg('path', { class: 'area', d: `${d}V${y(0)}H${x(first.t)}Z` }));
  root.append(svg('path', { class: 'line', d }));
  for (const p of points) {
    const dot = svg('circle', { class: 'dot', cx: x(p.t), cy: y(p.reserve), r: 3 });
    const title = svg('title', {});
    title.textContent = `${new Date(p.t).toLocaleString()}: ${formatCycles(p.reserve)}`;
    dot.append(title);
    root.append(dot);
  }
  root.dataset.points = String(points.length);
  root.dataset.last = String(last.reserve);
  return root;
}
