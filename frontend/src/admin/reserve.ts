// The reserve view: figures, the chart of the reserve history, low-water alerts, top-up and
// the creation switch.
import type { AdminClient } from '../client/admin';
import { formatCycles } from '../client/errors';
import type { FactoryConfig, ReserveStatus } from '../client/types';
import { chartPoints, reserveChart } from './chart';
import { $, confirmAction, el, figure, formatTimeNs, say } from './dom';

const T = 1_000_000_000_000;

/** `"12.5"` T cycles → cycles; throws a sentence for anything else. */
export function parseTCycles(text: string): bigint {
  const s = text.trim().replace(/[_\s]/g, '');
  if (!/^\d+(\.\d{1,12})?$/.test(s)) throw new Error('The amount must be a number of T cycles, e.g. 10 or 2.5.');
  const [whole, frac = ''] = s.split('.') as [string, string?];
  const cycles = BigInt(whole) * BigInt(T) + BigInt(frac.padEnd(12, '0'));
  if (cycles === 0n) throw new Error('The amount must be more than 0 T cycles.');
  return cycles;
}

export function renderReserveFigures(r: ReserveStatus): void {
  $('reserve-figures').replaceChildren(
    figure('Reserve', formatCycles(r.reserve), { 'data-figure': 'reserve', 'data-value': r.reserve.toString() }),
    figure('Spendable now', formatCycles(r.spendable), { 'data-figure': 'spendable' }),
    figure('Liquid balance', formatCycles(r.liquid_balance), { 'data-figure': 'liquid' }),
    figure('Balance', formatCycles(r.balance), { 'data-figure': 'balance' }),
    figure('Threshold', formatCycles(r.threshold), { 'data-figure': 'threshold' }),
    figure('Low-water mark', formatCycles(r.low_water_mark), { 'data-figure': 'low-water' }),
    figure('Kept for running costs', formatCycles(r.operating_cycles)),
    figure('Spent today', `${formatCycles(r.spent_today)} of ${formatCycles(r.daily_cycle_budget)}`),
    figure('Topped up in total', formatCycles(r.total_topped_up), { 'data-figure': 'topped-up' }),
    figure('Taken by creations in total', formatCycles(r.total_consumed), { 'data-figure': 'spent' }),
    figure('Returned by cleanups in total', formatCycles(r.total_returned), { 'data-figure': 'returned' }),
  );
  $('alerts').replaceChildren(
    ...(r.alerts.length
      ? [...r.alerts].reverse().map((a) =>
          el(
            'li',
            { 'data-at': a.at.toString() },
            `${formatTimeNs(a.at)}: the reserve was ${formatCycles(a.reserve)}, under the low-water mark of ${formatCycles(
              a.low_water_mark,
            )}`,
          ),
        )
      : [el('li', { class: 'none' }, 'No low-water alert recorded.')]),
  );
}

export function renderEnabled(c: FactoryConfig): void {
  const s = $('creation-enabled');
  s.dataset.enabled = String(c.creation_enabled);
  s.textContent = c.creation_enabled ? 'enabled' : 'disabled';
  $('toggle-enabled').textContent = c.creation_enabled ? 'Disable creation…' : 'Enable creation…';
}

export async function loadReserve(admin: AdminClient): Promise<void> {
  const [status, history, config] = await Promise.all([admin.reserve(), admin.reserveHistory(), admin.config()]);
  renderReserveFigures(status);
  renderEnabled(config);
  const points = chartPoints(history.snapshots, status.reserve, Date.now());
  const chart = $('reserve-chart');
  chart.replaceChildren(reserveChart(points, { threshold: status.threshold, lowWater: status.low_water_mark }));
  chart.dataset.points = String(points.length);
  chart.dataset.last = status.reserve.toString();
  chart.dataset.snapshots = String(history.snapshots.length);
  $('reserve-chart-caption').textContent = history.page
    ? `${history.snapshots.length} snapshot${history.snapshots.length === 1 ? '' : 's'} (at most one per ${
        history.page.interval_seconds
      } s, ${history.page.capacity} kept); times are the backend's clock.`
    : '';
}

export function wireReserve(admin: AdminClient, busy: (f: () => Promise<void>) => Promise<void>): void {
  $<HTMLFormElement>('topup-form').onsubmit = (ev) => {
    ev.preventDefault();
    void busy(async () => {
      const cycles = parseTCycles($<HTMLInputElement>('topup-amount').value);
      if (!(await confirmAction(`Move ${formatCycles(cycles)} of the backend's balance into the reserve?`, 'Top up')))
        return;
      const r = await admin.topUp(cycles);
      say(`The reserve is now ${formatCycles(r.reserve)}.`);
      await loadReserve(admin);
    });
  };
  $('toggle-enabled').onclick = () =>
    void busy(async () => {
      const enabled = $('creation-enabled').dataset.enabled === 'true';
      const question = enabled
        ? 'Disable the creation of personal canisters? New requests will be refused; running ones go on.'
        : 'Enable the creation of personal canisters?';
      if (!(await confirmAction(question, enabled ? 'Disable' : 'Enable'))) return;
      renderEnabled(await admin.setCreationEnabled(!enabled));
      say(`Creation is now ${enabled ? 'disabled' : 'enabled'}.`);
    });
}
