import { describe, expect, it } from 'vitest';
import type { UserRecord } from '../../storage/index.js';
import { listScope, newestFirstStart } from './shared.js';

const user = (role: UserRecord['role'], supportId: string | null) => ({ id: 'u', role, supportId }) as UserRecord;

describe('list helpers', () => {
  it('scopes a list to the user: own tenant, an operator’s choice or all, and nothing of another tenant', () => {
    expect(listScope(user('viewer', 'T1'), undefined)).toBe('T1');
    expect(listScope(user('admin', 'T1'), 'T1')).toBe('T1');
    expect(listScope(user('admin', 'T1'), 'T2')).toBe(false);
    expect(listScope(user('operator', null), 'T2')).toBe('T2');
    expect(listScope(user('operator', null), undefined)).toBeNull();
  });

  it('starts a newest-first scan after the cursor, or just past `to` when that is older', () => {
    expect(newestFirstStart(undefined, undefined)).toBeUndefined();
    expect(newestFirstStart([500, 'b'], undefined)).toEqual({ time: 500, id: 'b' });
    expect(newestFirstStart([500, 'b'], 400)).toEqual({ time: 400, id: '\uffff' });
    expect(newestFirstStart([300, 'b'], 400)).toEqual({ time: 300, id: 'b' });
    expect(newestFirstStart(undefined, 400)).toEqual({ time: 400, id: '\uffff' });
    // A malformed cursor starts from the newest.
    expect(newestFirstStart(['x', 7], undefined)).toEqual({ time: Infinity, id: '\uffff' });
  });
});
