import { describe, expect, it } from 'vitest';
import { ownerMarker, parseOwner } from '../../src/reconcile/owner.js';

describe('ownerMarker / parseOwner', () => {
  it('formats the marker as appvisor:<storeId>:<app>', () => {
    expect(ownerMarker('s1', 'crm')).toBe('appvisor:s1:crm');
  });

  it.each([
    ['appvisor:s1:crm', { storeId: 's1', app: 'crm' }],
    ['appvisor:0f3a-9c:billing_v2', { storeId: '0f3a-9c', app: 'billing_v2' }],
    [undefined, undefined],
    ['', undefined],
    ['created by dba', undefined],
    ['appvisor:', undefined],
    ['appvisor:s1', undefined],
    ['appvisor:s1:', undefined],
    ['appvisor::crm', undefined],
    ['appvisor:s1:crm:extra', undefined],
    ['APPVISOR:s1:crm', undefined],
  ])('parseOwner(%j) -> %j', (marker, expected) => {
    expect(parseOwner(marker)).toEqual(expected);
  });

  it('round-trips', () => {
    expect(parseOwner(ownerMarker('abc', 'x-y'))).toEqual({ storeId: 'abc', app: 'x-y' });
  });
});
