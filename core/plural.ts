/**
 * English counts for messages and report summaries ("1 child process",
 * "3 child processes", "0 registry changes"): one rule for every place that
 * prints a number with a noun, so no message builds a plural by appending "s".
 */

/**
 * The plural of an English noun phrase (its last word is inflected): -s, -es
 * after s/x/z/ch/sh, -ies after a consonant + y. Irregular nouns pass their
 * plural to `count` instead.
 */
export function pluralOf(noun: string): string {
  if (/(s|x|z|ch|sh)$/i.test(noun)) return `${noun}es`;
  if (/[^aeiou]y$/i.test(noun)) return `${noun.slice(0, -1)}ies`;
  return `${noun}s`;
}

/**
 * `n` followed by the noun in the right number: singular for exactly 1,
 * plural otherwise (0 included).
 * @param plural the plural when it is not regular (e.g. "indices").
 */
export function count(n: number, noun: string, plural?: string): string {
  return `${n} ${n === 1 ? noun : (plural ?? pluralOf(noun))}`;
}
