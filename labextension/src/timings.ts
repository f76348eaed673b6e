/** Browser-side timings for the latency bench: `window.jupyterDevstralTimings`. */

export type TimingEntry =
  | { ts: number | undefined; rendered: number; turn: string }
  | { op: 'list_cells'; ms: number; cells: number };

declare global {
  interface Window {
    jupyterDevstralTimings?: TimingEntry[];
  }
}

export function recordTiming(entry: TimingEntry): void {
  if (typeof window === 'undefined') {
    return;
  }
  if (!Array.isArray(window.jupyterDevstralTimings)) {
    window.jupyterDevstralTimings = [];
  }
  window.jupyterDevstralTimings.push(entry);
}
