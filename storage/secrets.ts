/**
 * Secrets as stored: enrollment keys, device tokens and session tokens are
 * random values shown once; only their SHA-256 is kept (they carry 256 bits
 * of entropy, so a slow hash adds nothing).
 */
import { createHash, randomBytes } from 'node:crypto';

/** SHA-256 of a secret, as hex. */
export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A new random secret: `prefix_` then 32 random bytes in base64url. */
export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}
