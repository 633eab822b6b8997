/**
 * Kendall's tau-a between two score lists of equal length: (concordant - discordant) / all pairs;
 * pairs tied in either list count as neither. NaN for fewer than two items. Used to check whether
 * the cheap proxy ranks candidates like fine-tuning does (EagleEye's premise).
 */
export function kendallTau(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError(`kendallTau needs equal lengths, got ${a.length} and ${b.length}`);
  let concordant = 0;
  let discordant = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) {
      const s = Math.sign(a[i] - a[j]) * Math.sign(b[i] - b[j]);
      if (s > 0) concordant++;
      else if (s < 0) discordant++;
    }
  }
  const pairs = (a.length * (a.length - 1)) / 2;
  return pairs === 0 ? NaN : (concordant - discordant) / pairs;
}
