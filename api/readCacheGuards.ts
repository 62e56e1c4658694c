/**
 * What the read cache (api/readCache.ts) remembers beside its entries to keep no copy older than
 * what events have shown: the highest sequence seen per customer and per device, bounded, with a
 * floor for the devices it forgot; and which cached customers hold each device.
 */
import { LRUCache } from 'lru-cache';
import type { SnapshotDevice } from '../graph/context';

/** Slots of the forgotten device sequences' floor (512 KB). */
const FORGOTTEN_SLOTS = 65_536;

/** A device id's slot in the floor (FNV-1a). */
function slotOf(deviceId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) h = Math.imul(h ^ deviceId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % FORGOTTEN_SLOTS;
}

/**
 * The highest customer and device sequences events have shown (each bounded to `max` ids): a
 * snapshot below them is never kept, whatever read brought it (a fill that began before the
 * event, a lagging follower).
 */
export class SeenSequences {
  private readonly customers: LRUCache<string, number>;
  private readonly devices: LRUCache<string, number>;
  /**
   * What `devices` forgot to make room, folded by a hash of the device id: each slot holds the
   * highest sequence forgotten of any device hashed to it, a floor no device there is known to be
   * below. A link's device is added in place only at or past it (collisions refuse a few more).
   */
  private readonly forgotten = new Float64Array(FORGOTTEN_SLOTS);

  constructor(max: number) {
    this.customers = new LRUCache<string, number>({ max });
    this.devices = new LRUCache<string, number>({
      max,
      dispose: (seq, device, reason) => {
        if (reason !== 'evict') return;
        const slot = slotOf(device);
        if (seq > (this.forgotten[slot] ?? 0)) this.forgotten[slot] = seq;
      },
    });
  }

  /** An event of the customer showed `seq` (null: an event without one). */
  customerAt(customerId: string, seq: number | null): void {
    if (seq !== null && seq > this.customer(customerId)) this.customers.set(customerId, seq);
  }

  /** An event of the device showed `seq`. */
  deviceAt(deviceId: string, seq: number | null): void {
    if (seq !== null && seq > (this.devices.get(deviceId) ?? 0)) this.devices.set(deviceId, seq);
  }

  /** The highest sequence seen of the customer (0: none). */
  customer(customerId: string): number {
    return this.customers.get(customerId) ?? 0;
  }

  /** Whether an event of any of the devices showed a later sequence than the snapshot holds. */
  anyDeviceAhead(devices: readonly SnapshotDevice[]): boolean {
    return devices.some((d) => (this.devices.get(d.device_id) ?? 0) > d.seq);
  }

  /** The highest sequence seen of the device, or forgotten into its slot's floor. */
  deviceFloor(deviceId: string): number {
    return Math.max(this.devices.get(deviceId) ?? 0, this.forgotten[slotOf(deviceId)] ?? 0);
  }

  clear(): void {
    this.customers.clear();
    this.devices.clear();
    this.forgotten.fill(0);
  }
}

/** deviceId → the cached customers who logged in from it: where a device's event goes. */
export class DeviceIndex {
  private readonly byDevice = new Map<string, Set<string>>();

  add(customerId: string, devices: readonly SnapshotDevice[]): void {
    for (const d of devices) {
      let customers = this.byDevice.get(d.device_id);
      if (!customers) this.byDevice.set(d.device_id, (customers = new Set()));
      customers.add(customerId);
    }
  }

  remove(customerId: string, devices: readonly SnapshotDevice[]): void {
    for (const d of devices) {
      const customers = this.byDevice.get(d.device_id);
      if (!customers) continue;
      customers.delete(customerId);
      if (customers.size === 0) this.byDevice.delete(d.device_id);
    }
  }

  /** The cached customers on the device, as a copy (the caller may drop them as it goes). */
  customersOf(deviceId: string): string[] {
    const customers = this.byDevice.get(deviceId);
    return customers ? [...customers] : [];
  }

  clear(): void {
    this.byDevice.clear();
  }
}
