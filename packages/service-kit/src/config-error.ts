/** The error a bad configuration stops start-up with, naming the variable (and the file it came from). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
    /** The configuration file the bad value or key came from (QUIRE_CONFIG_FILE), if not the environment. */
    readonly file?: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

/** The message for a name no Quire app knows: the closest known name, then all of them. */
export function unknownMessage(name: string, known: string[], what = 'variable'): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  const hint = best === undefined ? '' : `did you mean ${best}? `;
  return `unknown ${what}; ${hint}Quire apps read ${known.join(', ')}`;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
