/** Leaf validators shared by the config sections: one expectation string for both the type check and the range check. */
import { z } from 'zod';

export function num(expect: string, ok: (v: number) => boolean = () => true) {
  return z.number({ error: expect }).refine(ok, { error: expect });
}
export function int(expect: string, ok: (v: number) => boolean = () => true) {
  return num(expect, (v) => Number.isInteger(v) && ok(v));
}
export const positiveInt = (expect = 'an integer >= 1') => int(expect, (v) => v >= 1);
export const nonNegativeInt = (expect = 'an integer >= 0') => int(expect, (v) => v >= 0);
export const positiveNumber = (expect = 'a number > 0') => num(expect, (v) => v > 0);
export const ratio = (expect = 'a number in (0, 1]') => num(expect, (v) => v > 0 && v <= 1);
export const pathString = () => z.string({ error: 'a path' }).min(1, { error: 'a non-empty path' });
export const flag = () => z.boolean({ error: 'true or false' });
export const probability = (expect = 'a number in [0, 1]') => num(expect, (v) => v >= 0 && v <= 1);
export const unitOpen = (expect = 'a number in (0, 1)') => num(expect, (v) => v > 0 && v < 1);
