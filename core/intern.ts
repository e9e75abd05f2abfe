/**
 * One table of interned strings per thread, shared by everything in it that
 * keeps strings from trail events: the shard's device state (process images,
 * command lines, paths) and the Sigma matcher's memo keys.
 *
 * Why: a decoder may hand out strings that are slices of one large string
 * per batch (msgpackr's native string extraction does), so keeping a
 * 38-character GUID can keep a whole batch's text alive (measured 257 KB per
 * device instead of 110 KB). Interning also shares the many repeated paths
 * and signers between devices, and lets a memo keyed by an interned string
 * find a value the state interned by identity: a `Map` look-up then compares
 * pointers and reuses the string's cached hash instead of reading it twice.
 */
const interned = new Map<string, string>();
const MAX_INTERNED = 200_000;

/** The interned, flat copy of `s` (the same object for equal strings while the table holds it). */
export function internString(s: string): string {
  const known = interned.get(s);
  if (known !== undefined) return known;
  // A round trip through bytes yields a flat string that owns its characters.
  const copy = Buffer.from(s, 'utf8').toString('utf8');
  if (interned.size >= MAX_INTERNED) interned.clear();
  interned.set(copy, copy);
  return copy;
}
