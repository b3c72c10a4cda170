/** Levenshtein distance, case-insensitive (a wrong case costs nothing extra over a wrong letter). */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) {
      const substitution = previous[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[y.length]!;
}

/**
 * The candidate closest to `input`, if it is close enough to be a likely typo:
 * a case-only difference, or at most a third of the input's letters (and at least 2) wrong.
 * Failing that, the one candidate that has `input` as a run of its `-`/`_`-separated words
 * (`schema` → `new-schema`, `main` → `with-main`).
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  if (input.length > 200) return undefined;
  return byEdits(input, candidates) ?? byWords(input, candidates);
}

function byWords(input: string, candidates: readonly string[]): string | undefined {
  const words = input.toLowerCase().split(/[-_]/);
  if (input.length < 3 || words.includes('')) return undefined;
  const matches = candidates.filter((candidate) => {
    const theirs = candidate.toLowerCase().split(/[-_]/);
    for (let i = 0; i + words.length <= theirs.length; i++) {
      if (words.every((word, j) => theirs[i + j] === word)) return theirs.length > words.length;
    }
    return false;
  });
  return matches.length === 1 ? matches[0] : undefined;
}

function byEdits(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(input, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  return bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : undefined;
}

/** "; did you mean 'x'?" or "". */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const suggestion = closest(input, candidates);
  return suggestion === undefined || suggestion === input ? '' : `; did you mean '${suggestion}'?`;
}
