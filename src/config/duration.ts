import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';

/** What a duration looks like, for error messages. */
export const DURATION_EXPECTATION = 'a duration like `8h`, `90m`, `30s` or `1h30m`';
/** What a clock time looks like, for error messages. */
export const CLOCK_EXPECTATION = 'a local clock time `HH:MM` (00:00 to 23:59)';

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;
type Unit = keyof typeof UNIT_MS;
const UNIT_ORDER: readonly Unit[] = ['d', 'h', 'm', 's'];

/**
 * Milliseconds in a duration string, or null when it is not one. Grammar: one or more
 * `<number><unit>` parts, units d/h/m/s, each at most once and from largest to smallest
 * (`1h30m`, `1.5h`, `45s`); whitespace between parts is allowed. The total must be > 0.
 */
export function tryParseDuration(text: string): number | null {
  const s = text.trim();
  if (s === '') return null;
  const part = /(\d+(?:\.\d+)?|\.\d+)\s*([dhms])\s*/gy;
  let total = 0;
  let lastUnit = -1;
  let pos = 0;
  for (let m = part.exec(s); m !== null; m = part.exec(s)) {
    const unit = UNIT_ORDER.indexOf(m[2] as Unit);
    if (unit <= lastUnit) return null;
    lastUnit = unit;
    total += Number(m[1]) * UNIT_MS[m[2] as Unit];
    pos = part.lastIndex;
  }
  if (pos !== s.length || !(total > 0) || !Number.isFinite(total)) return null;
  return Math.round(total);
}

/** Milliseconds in `8h`, `90m`, `30s`, `1h30m` (see tryParseDuration); throws INVALID_ARGUMENT otherwise. */
export function parseDuration(text: string): number {
  const ms = typeof text === 'string' ? tryParseDuration(text) : null;
  if (ms === null) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected ${DURATION_EXPECTATION}, got ${quote(text)}`);
  }
  return ms;
}

/** Hours and minutes of `HH:MM` (one-digit hours allowed), or null. */
export function tryParseClock(text: string): { hours: number; minutes: number } | null {
  const m = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(text.trim());
  return m ? { hours: Number(m[1]), minutes: Number(m[2]) } : null;
}

/**
 * The next moment strictly after `now` at which the local clock reads `until` (`07:00`): today if
 * that is still ahead, else tomorrow. Pure: the caller passes `now`. Across a DST change the date
 * arithmetic is done on calendar fields, so "tomorrow 07:00" stays 07:00 local time.
 */
export function deadlineFromUntil(until: string, now: Date): Date {
  const clock = typeof until === 'string' ? tryParseClock(until) : null;
  if (clock === null) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected ${CLOCK_EXPECTATION}, got ${quote(until)}`);
  }
  const at = (dayOffset: number): Date => new Date(now.getFullYear(), now.getMonth(), now.getDate() + dayOffset, clock.hours, clock.minutes, 0, 0);
  const today = at(0);
  return today.getTime() > now.getTime() ? today : at(1);
}
