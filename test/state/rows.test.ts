import { describe, expect, it } from 'vitest';
import {
  type AppRow,
  CorruptRowError,
  historyToRow,
  recordToRow,
  rowToHistory,
  rowToRecord,
  UNKNOWN_STORED_CODE,
} from '../../src/state/rows.js';
import { fullRecord, historyEntry, minimalRecord } from './fixtures.js';

/** A record's row as the store reads it back (the columns a record write leaves alone included). */
function rowOf(record = fullRecord('crm')): AppRow {
  return { ...recordToRow(record), operator_intent: null, version: 3 };
}

describe('records and history rows', () => {
  it.each([
    ['a full record', fullRecord('crm')],
    ['a minimal record', minimalRecord('desk')],
  ])('reads back %s as written', (_label, record) => {
    expect(rowToRecord(rowOf(record))).toEqual({ ...record, version: 3 });
  });

  it.each([true, false])('reads back a history entry (with an error: %s) as written', (withError) => {
    const entry = historyEntry('crm', 1, withError);
    expect(rowToHistory(historyToRow(entry))).toEqual(entry);
  });
});

describe('stored error codes', () => {
  it('reads an unknown stored code on a record as a registry code, keeping the stored one in the message', () => {
    const row = rowOf();
    row.last_error = JSON.stringify({
      code: 'FUTURE_CODE',
      message: 'something new',
      at: '2025-01-02T03:04:07Z',
    });
    expect(UNKNOWN_STORED_CODE).toBe('APP_ERROR');
    expect(rowToRecord(row).lastError).toEqual({
      code: 'APP_ERROR',
      message: 'something new (stored with code FUTURE_CODE, which this appvisor does not know)',
      at: '2025-01-02T03:04:07Z',
    });
  });

  it.each([
    ['a PostgreSQL SQLSTATE', '42P01'],
    ['a MySQL error code', 'ER_BAD_DB_ERROR'],
    ['no code at all', undefined],
    ['a number', 1045],
  ])('reads %s stored in a history entry as a registry code', (_label, code) => {
    const row = historyToRow(historyEntry('crm', 1, true));
    row.error = JSON.stringify({ code, message: 'down' });
    const error = rowToHistory(row).error!;
    expect(error.code).toBe('APP_ERROR');
    expect(error.message).toBe(`down (stored with code ${String(code)}, which this appvisor does not know)`);
  });

  it('keeps a known stored code as it is', () => {
    const row = rowOf();
    row.last_error = JSON.stringify({ code: 'DB_PERMISSION_DENIED', message: 'no', at: 'now' });
    expect(rowToRecord(row).lastError).toEqual({ code: 'DB_PERMISSION_DENIED', message: 'no', at: 'now' });
  });

  it.each(['"just text"', '42', 'not json'])('refuses a stored error that is no error object: %s', (text) => {
    const row = rowOf();
    row.last_error = text;
    expect(() => rowToRecord(row)).toThrow(CorruptRowError);
  });
});
