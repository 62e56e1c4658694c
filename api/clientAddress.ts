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
 * subscriber gets a whole /64 and can spread requests over 2^64 addresses. An IPv4 client written
 * as IPv6 (mapped `::ffff:a.b.c.d`, SIIT `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, in any
 * spelling) is counted by its IPv4 address: it never shares one /64 with every other such client.
 */
export function addressKey(address: string): string {
  const plain = address.replace(/%.*$/, '');
  if (!isIPv6(plain)) return plain;
  const g = ipv6Groups(plain);
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const embedsIPv4 =
    (zero(0, 5) && g[5] === 0xffff) ||
    (zero(0, 4) && g[4] === 0xffff && g[5] === 0) ||
    (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6));
  if (embedsIPv4) {
    const [hi = 0, lo = 0] = [g[6], g[7]];
    return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
  }
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(':')}::/64`;
}

/** An IPv6 address's eight 16-bit groups (a dotted IPv4 tail read as the last two). */
function ipv6Groups(address: string): number[] {
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill: string[] = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...fill, ...right].map((x) => parseInt(x, 16));
}
