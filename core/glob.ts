/**
 * Windows-style globs as operators write them in exception lists, log tuning
 * filters and USB allow-lists: case-insensitive, `*` any run of characters
 * (backslashes included), `?` exactly one; everything else is literal.
 */

/** Compiles a glob to an anchored, case-insensitive RegExp. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}
