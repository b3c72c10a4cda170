import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AppvisorError, ERRORS, type ErrorCode, isTerminal } from '../src/errors.js';

const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const codes = Object.keys(ERRORS) as ErrorCode[];

describe('error registry', () => {
  it.each(codes)('%s is documented in README.md with its HTTP status', (code) => {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
    expect(row, `README.md has no table row for ${code}`).toBeDefined();
    const status: number | undefined = (ERRORS[code] as { status?: number }).status;
    if (status !== undefined) expect(row).toContain(`| ${status} |`);
  });

  it('renders message templates and keeps unknown placeholders visible', () => {
    const err = new AppvisorError('APP_NOT_FOUND', { app: 'crm' });
    expect(err.message).toBe('no app named crm');
    expect(err.status).toBe(404);
    expect(new AppvisorError('APP_DISABLED').message).toBe('app {app} is disabled');
  });

  it('marks non-retryable errors terminal unless overridden', () => {
    expect(isTerminal(new AppvisorError('ADOPT_REFUSED', { kind: 'database', name: 'x' }))).toBe(true);
    expect(isTerminal(new AppvisorError('DB_UNREACHABLE'))).toBe(false);
    expect(isTerminal(new AppvisorError('DB_OPERATION_FAILED', {}, { retryable: false }))).toBe(true);
    expect(isTerminal(new Error('plain'))).toBe(false);
  });
});
