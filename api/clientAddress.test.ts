import { describe, expect, it } from 'vitest';
import { addressKey, blockListOf, callerAddress } from './clientAddress';

describe('the client address a caller without a valid token is counted by', () => {
  const proxies = blockListOf(['10.0.0.0/8', '192.0.2.10', 'fd00::/8']);

  it('is the socket’s peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(callerAddress('198.51.100.7', '203.0.113.1', blockListOf([]))).toBe('198.51.100.7');
    expect(callerAddress('198.51.100.7', undefined, proxies)).toBe('198.51.100.7');
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    expect(callerAddress('198.51.100.7', '203.0.113.1', proxies)).toBe('198.51.100.7');
  });

  it('behind trusted proxies, is the right-most address no trusted proxy added', () => {
    expect(callerAddress('10.1.2.3', '203.0.113.1', proxies)).toBe('203.0.113.1');
    // A caller writes its own X-Forwarded-For: only what the trusted proxies appended is believed.
    expect(callerAddress('10.1.2.3', '1.1.1.1, 203.0.113.1', proxies)).toBe('203.0.113.1');
    expect(callerAddress('10.1.2.3', '1.1.1.1, 203.0.113.1, 192.0.2.10, 10.9.9.9', proxies)).toBe('203.0.113.1');
    expect(callerAddress('::ffff:10.1.2.3', '2001:db8::1', proxies)).toBe('2001:db8::1');
    expect(callerAddress('fd00::1', '2001:db8::1, fd12::3', proxies)).toBe('2001:db8::1');
  });

  it('reads a hop written with its port, or in brackets', () => {
    expect(callerAddress('10.1.2.3', '203.0.113.1:54321', proxies)).toBe('203.0.113.1');
    expect(callerAddress('10.1.2.3', '[2001:db8::1]:443', proxies)).toBe('2001:db8::1');
    expect(callerAddress('10.1.2.3', '203.0.113.1:5, [fd00::9]:80', proxies)).toBe('203.0.113.1');
  });

  it('counts an IPv6 caller by its /64 (one subscriber holds all of it), an IPv4 one by its address', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::5')).toBe('2001:db8:0:0::/64');
    expect(addressKey('2001:0db8:0001:0002::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    // An IPv4 client written as IPv6, in any spelling, is its IPv4 address: never one shared /64.
    expect(addressKey('::ffff:cb00:7107')).toBe('203.0.113.7');
    expect(addressKey('::ffff:0:203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('64:ff9b::203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('64:ff9b::cb00:7108')).toBe('203.0.113.8');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });

  it('is the peer when the header is garbage, and the left-most hop when every hop is a proxy', () => {
    expect(callerAddress('10.1.2.3', 'not-an-address', proxies)).toBe('10.1.2.3');
    expect(callerAddress('10.1.2.3', '10.0.0.5, 10.0.0.6', proxies)).toBe('10.0.0.5');
  });
});
