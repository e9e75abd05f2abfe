/**
 * An operator's JSON client for a running API (an API node or the embedded
 * server's): the user and a session are made directly in its store, so a test
 * needs no login round trip.
 */
import type { HotStore } from '../../storage/index.js';

export type ApiCall = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: Record<string, unknown> }>;

/** Creates operator `op.api` in `store` and returns a caller of the API on 127.0.0.1:`httpPort` with its bearer token. */
export async function operatorCall(server: { store: HotStore; httpPort: number }): Promise<ApiCall> {
  await server.store.identity.createUser({ id: 'op.api', role: 'operator', supportId: null, password: 'pass-pass-pass', now: Date.now(), mustChangePassword: false });
  const token = await server.store.identity.createSession('op.api', 'token', Date.now(), 3_600_000);
  return async (method, path, body) => {
    const r = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
  };
}
