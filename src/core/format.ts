/** Number formats shared by the CLI's tables and the files the app writes (model cards). */

/** A fraction as a percentage, `-` when missing: 0.9123 -> `91.23%`. */
export const pct = (x: number | null | undefined, digits = 2): string => (x == null || Number.isNaN(x) ? '-' : `${(100 * x).toFixed(digits)}%`);

/** MACs in millions, two decimals. */
export const mmacs = (macs: number): string => (macs / 1e6).toFixed(2);
