import { describe, expect, it } from 'vitest';
import { TrustedDeviceReports } from './trustedDevices';

describe('TrustedDeviceReports', () => {
  it('remembers the reports started, and starts again past its limit', () => {
    const reports = new TrustedDeviceReports(2);
    reports.remember('a');
    reports.remember('b');
    expect([reports.has('a'), reports.has('b'), reports.has('c')]).toEqual([true, true, false]);
    reports.remember('c');
    expect([reports.has('a'), reports.has('b'), reports.has('c')]).toEqual([false, false, true]);
  });

  it('warns at most once per interval', () => {
    const reports = new TrustedDeviceReports(10, 60_000);
    const t = 1_000_000;
    expect(reports.mayWarn(t)).toBe(true);
    expect(reports.mayWarn(t + 59_999)).toBe(false);
    expect(reports.mayWarn(t + 60_000)).toBe(true);
  });

  it('each instance is its own: two apis in one process do not share what they said', () => {
    const one = new TrustedDeviceReports();
    const other = new TrustedDeviceReports();
    one.remember('x');
    expect(one.mayWarn(5_000_000)).toBe(true);
    expect(other.has('x')).toBe(false);
    expect(other.mayWarn(5_000_000)).toBe(true);
  });
});
