/**
 * Who the client is, for counting a caller without a valid token (api/rateLimit.ts): the socket's
 * peer, or behind trusted proxies (PERSONA_TRUSTED_PROXIES) the client they name.
 */
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net';

/** The trusted proxies (addresses or CIDRs) as a BlockList, which checks IPv4 and IPv6 alike. */
export function blockListOf(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const type = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

function trusted(proxies: BlockList, address: string): boolean {
  const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  const type = isIPv6(plain) ? 'ipv6' : isIPv4(plain) ? 'ipv4' : null;
  return type !== null && proxies.check(plain, type);
}

/**
 * Who the client is, for counting a caller without a valid token: the socket's peer, unless that
 * peer is a trusted proxy (PERSONA_TRUSTED_PROXIES) — then the right-most `X-Forwarded-For`
 * address no trusted proxy added (what a caller wrote to the left of it is not believed).
 */
export function callerAddress(peer: string, forwardedFor: string | undefined, proxies: BlockList): string {
  if (!forwardedFor || !trusted(proxies, peer)) return peer;
  const hops = forwardedFor
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hostOf(hops[i] as string);
    if (!isIP(hop.replace(/^::ffff:/, ''))) return peer;
    if (!trusted(proxies, hop)) return hop;
  }
  return hops[0] ? hostOf(hops[0]) : peer;
}

/** A hop as proxies write it, without its port: `203.0.113.1:5678`, `[2001:db8::1]:443`, `[::1]`. */
function hostOf(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed) return bracketed[1] as string;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  return v4 ? (v4[1] as string) : hop;
}

/**
 * What an anonymous caller is counted by: an IPv4 address, or an IPv6 address's /64 — a single
 * subscriber gets a whole /64 and can spread requests over 2^64 addresses.
 */
export function addressKey(address: string): string {
  const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  if (!isIPv6(plain)) return plain;
  const [head = '', tail = ''] = plain.split('::') as [string, string?];
  const left = head ? head.split(':') : [];
  const right = plain.includes('::') && tail ? tail.split(':') : [];
  const zeros: string[] = Array.from({ length: 8 - left.length - right.length }, () => '0');
  const groups = plain.includes('::') ? [...left, ...zeros, ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
