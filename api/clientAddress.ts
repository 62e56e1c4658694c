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
    const hop = hops[i] as string;
    if (!isIP(hop.replace(/^::ffff:/, ''))) return peer;
    if (!trusted(proxies, hop)) return hop;
  }
  return hops[0] ?? peer;
}
