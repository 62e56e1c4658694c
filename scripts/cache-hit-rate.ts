/**
 * The read cache's hit rate in steady state, by its entry bound: a simulation, not a measurement
 * (bench:context's passes are too short to reach steady state, so their hit rate is mostly first
 * reads). Payments draw customers from a Zipf distribution over the whole graph, as issue 19's
 * payment-shaped workload does; each payment makes three reads (Cerebrum's, Chimera's and the
 * checkout's) of one customer through an LRU cache of each bound. The first half of the payments
 * fill the cache; the hit rate is counted over the second half. Writes are left out: the mixed
 * run's payment outcomes are applied to cached entries in place, and what drops an entry (a
 * card's status, a suspension) is rare beside reads.
 *
 *   npx tsx scripts/cache-hit-rate.ts [--customers 1000000] [--zipf 1.1] [--payments 400000]
 *                                    [--bounds 2000,5000,10000,20000,50000,100000]
 */
import { parseArgs } from 'node:util';
import { LRUCache } from 'lru-cache';
import { mulberry32, Zipf } from './random';

const { values } = parseArgs({
  options: {
    customers: { type: 'string', default: '1000000' },
    zipf: { type: 'string', default: '1.1' },
    payments: { type: 'string', default: '400000' },
    bounds: { type: 'string', default: '2000,5000,10000,20000,50000,100000' },
  },
});
const customers = Number(values.customers);
const s = Number(values.zipf);
const payments = Number(values.payments);
const bounds = values.bounds.split(',').map(Number);
if (!Number.isInteger(customers) || customers < 1) throw new Error('--customers must be a positive integer');
if (!(s > 0)) throw new Error('--zipf must be positive');
if (!Number.isInteger(payments) || payments < 2) throw new Error('--payments must be an integer of at least 2');
if (bounds.some((b) => !Number.isInteger(b) || b < 1)) throw new Error('--bounds must be positive integers');

const zipf = new Zipf(customers, s);
console.log(
  `Zipf s=${String(s)} over ${customers.toLocaleString('en')} customers, ${payments.toLocaleString('en')} payments`,
);
console.log('| entry bound | hit rate (3 reads a payment) | first read of a payment held |');
console.log('| ---: | ---: | ---: |');
for (const bound of bounds) {
  const rand = mulberry32(7);
  const lru = new LRUCache<number, true>({ max: bound });
  let hits = 0;
  let reads = 0;
  let held = 0;
  for (let p = 0; p < payments; p++) {
    const counted = p >= payments / 2;
    const customer = zipf.draw(rand);
    const first = lru.get(customer) !== undefined;
    if (!first) lru.set(customer, true);
    if (counted) {
      reads += 3;
      hits += first ? 3 : 2;
      held += first ? 1 : 0;
    }
  }
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  console.log(
    `| ${bound.toLocaleString('en')} | ${pct(hits / reads)} | ${pct(held / (payments - Math.ceil(payments / 2)))} |`,
  );
}
