// "1 page", "2 pages", "1 directory", "3 directories": counts in messages read as English.
export function plural(n: number | bigint, word: string): string {
  if (n === 1 || n === 1n) return `${n} ${word}`;
  return `${n} ${word.endsWith('y') ? `${word.slice(0, -1)}ies` : `${word}s`}`;
}
