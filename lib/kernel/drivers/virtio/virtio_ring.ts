/*
 * The kernel side of a split virtqueue (drivers/virtio/virtio_ring.c, split part only):
 * posting scatter-gather buffers on the avail ring and taking them back off the used ring.
 * The memory layout and its accessors are virtio_ring.ts (shared with the host half);
 * this file owns the driver's bookkeeping: the free-descriptor list, which token each
 * chain belongs to, the shadow indices, and the indirect tables.
 *
 * Memory: the three ring parts must be physically contiguous, and the page allocator hands
 * out single frames. A queue of 128 entries takes 3342 bytes (vring_size(128)), so queues
 * are capped at 128 entries and live in one page. Large requests are still cheap: with
 * VIRTIO_F_INDIRECT_DESC a chain takes one ring slot and its descriptors go into an
 * indirect table of up to 256 entries, one page each, kept in a small pool.
 *
 * The device is not trusted with our bookkeeping: the free list lives in JS arrays, not in
 * the descriptors' `next` fields the device could overwrite, and a used entry naming a
 * head that is not in flight is reported and skipped.
 *
 * Concurrency: add/kick run in kernel context (the block layer's dispatch, which may be in
 * IRQ context); getBuf runs from the device's IRQ handler. Neither sleeps.
 */
import { pr_warn } from '../../kernel/printk.js';
import { host } from '../../arch/cpu.js';
import { alloc_page, put_page, physMem, PAGE_SIZE, type page } from '../../mm/page_alloc.js';
import {
  VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE, vring,
  vring_size, writeDesc,
} from '../../include/uapi/linux/virtio_ring.js';

/** One buffer in physical memory. */
export interface Sg { addr: number; len: number }

/** Largest queue that fits one page (see the header). */
export const VRING_MAX_NUM_ONE_PAGE = 128;
/** Descriptors in one indirect table (one page). */
export const VRING_INDIRECT_MAX = PAGE_SIZE / VIRTQ_DESC_SIZE;

export class virtqueue {
  readonly ring: vring;
  /** Free descriptor indices (a stack). */
  private readonly freeList: number[] = [];
  /** Per head: the caller's token, the descriptors it holds, its indirect page. */
  private readonly tokens: unknown[];
  private readonly chains: (number[] | null)[];
  private readonly indirectOf: (page | null)[];
  private readonly indirectPool: page[] = [];
  /** Our copy of avail idx (we are its only writer) and the used idx we consumed up to. */
  private availIdx = 0;
  private lastUsedIdx = 0;
  /** Chains added since the last kick. */
  private added = 0;
  /** Tokens handed out and not yet back. */
  inFlight = 0;
  /** Used entries we could not match (device bugs). */
  badUsed = 0;
  private readonly debug = host().debug?.('lkl:virtio:ring');

  constructor(
    readonly index: number,
    readonly num: number,
    private readonly page: page,
    readonly useIndirect: boolean,
    private readonly notifyFn: (vq: virtqueue) => void,
    readonly callback: (vq: virtqueue) => void,
  ) {
    const l = vring_size(num);
    if (l.totalSize > PAGE_SIZE) throw new RangeError(`virtqueue of ${num} entries does not fit one page`);
    const base = page.phys;
    this.ring = new vring(physMem(), num, base + l.descOffset, base + l.availOffset, base + l.usedOffset);
    for (let i = num - 1; i >= 0; i--) this.freeList.push(i);
    this.tokens = new Array(num).fill(null);
    this.chains = new Array(num).fill(null);
    this.indirectOf = new Array(num).fill(null);
  }

  /** Physical addresses to program into QueueDesc / QueueDriver / QueueDevice. */
  get descAddr(): number { return this.ring.desc; }
  get availAddr(): number { return this.ring.avail; }
  get usedAddr(): number { return this.ring.used; }
  get numFree(): number { return this.freeList.length; }

  /**
   * The most buffers one chain may have: an indirect table's worth, or the whole ring.
   * Drivers size their segment limits from this.
   */
  get maxSgs(): number { return this.useIndirect ? VRING_INDIRECT_MAX : this.num; }

  /**
   * virtqueue_add_sgs: post `out` (device-readable) then `inn` (device-writable) buffers
   * as one chain identified by `token` (returned by getBuf). False when there is no room
   * right now (try again after a completion); the ring is untouched then.
   */
  addSgs(out: Sg[], inn: Sg[], token: unknown): boolean {
    const n = out.length + inn.length;
    if (n === 0 || token === null || token === undefined) throw new Error('virtqueue: empty chain or null token');
    let head: number;
    if (this.useIndirect && n > 1 && n <= VRING_INDIRECT_MAX && this.freeList.length >= 1) {
      const table = this.indirectPool.pop() ?? alloc_page();
      if (table) {
        head = this.freeList.pop()!;
        const mem = this.ring.view;
        let i = 0;
        for (const sg of out) writeDesc(mem, table.phys + i * VIRTQ_DESC_SIZE, { addr: sg.addr, len: sg.len, flags: i + 1 < n ? VIRTQ_DESC_F_NEXT : 0, next: i + 1 }), i++;
        for (const sg of inn) writeDesc(mem, table.phys + i * VIRTQ_DESC_SIZE, { addr: sg.addr, len: sg.len, flags: VIRTQ_DESC_F_WRITE | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0), next: i + 1 }), i++;
        this.ring.writeDesc(head, { addr: table.phys, len: n * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
        this.chains[head] = [head];
        this.indirectOf[head] = table;
        return this.publish(head, token);
      }
      /* no memory for a table: a direct chain still works if the ring has room */
    }
    if (this.freeList.length < n) return false;
    const descs: number[] = [];
    for (let k = 0; k < n; k++) descs.push(this.freeList.pop()!);
    let k = 0;
    for (const sg of [...out, ...inn]) {
      const write = k >= out.length;
      this.ring.writeDesc(descs[k]!, {
        addr: sg.addr, len: sg.len,
        flags: (write ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
        next: k + 1 < n ? descs[k + 1]! : 0,
      });
      k++;
    }
    head = descs[0]!;
    this.chains[head] = descs;
    this.indirectOf[head] = null;
    return this.publish(head, token);
  }

  private publish(head: number, token: unknown): boolean {
    this.tokens[head] = token;
    /* the ring entry first, then idx: idx is the publication point (2.7.13) */
    this.ring.setAvailRing(this.availIdx, head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.ring.availIdx = this.availIdx;
    this.added++;
    this.inFlight++;
    return true;
  }

  /** virtqueue_kick: tell the device about the chains added since the last kick. */
  kick(): void {
    if (this.added === 0) return;
    this.added = 0;
    this.notifyFn(this);
  }

  /** Is there a used entry we have not consumed? */
  moreUsed(): boolean { return this.lastUsedIdx !== this.ring.usedIdx; }

  /**
   * virtqueue_get_buf: the next completed chain's token and the bytes the device wrote
   * into its device-writable buffers, or null when the used ring holds nothing new.
   */
  getBuf(): { token: unknown; len: number } | null {
    while (this.moreUsed()) {
      const { id, len } = this.ring.usedElem(this.lastUsedIdx);
      this.lastUsedIdx = (this.lastUsedIdx + 1) & 0xffff;
      const token = id < this.num ? this.tokens[id] : null;
      if (token === null || token === undefined) {
        this.badUsed++;
        pr_warn(`virtio: queue ${this.index}: used entry for head ${id}, which is not in flight`);
        continue;
      }
      this.detach(id);
      return { token, len };
    }
    return null;
  }

  private detach(head: number): void {
    this.tokens[head] = null;
    const descs = this.chains[head] ?? [];
    this.chains[head] = null;
    for (let i = descs.length - 1; i >= 0; i--) this.freeList.push(descs[i]!);
    const table = this.indirectOf[head];
    this.indirectOf[head] = null;
    /* keep a few tables around: the next large request needs one at once */
    if (table) {
      if (this.indirectPool.length < 32) this.indirectPool.push(table);
      else put_page(table);
    }
    this.inFlight--;
  }

  /**
   * virtqueue_detach_unused_buf, for all of them: after a reset, the tokens the device
   * will never return. The ring is left empty.
   */
  detachUnused(): unknown[] {
    const out: unknown[] = [];
    for (let h = 0; h < this.num; h++) {
      const t = this.tokens[h];
      if (t !== null && t !== undefined) { out.push(t); this.detach(h); }
    }
    this.debug?.(`queue ${this.index}: ${out.length} buffers detached`);
    return out;
  }

  /** Free the ring and table memory (after reset: the device no longer looks at it). */
  free(): void {
    for (let h = 0; h < this.num; h++) if (this.indirectOf[h]) { put_page(this.indirectOf[h]!); this.indirectOf[h] = null; }
    for (const p of this.indirectPool.splice(0)) put_page(p);
    put_page(this.page);
  }
}

/** vring_create_virtqueue: a queue of `num` entries in a fresh page. Null without memory. */
export function vring_create_virtqueue(index: number, num: number, useIndirect: boolean,
  notify: (vq: virtqueue) => void, callback: (vq: virtqueue) => void): virtqueue | null {
  const page = alloc_page();
  if (!page) return null;
  return new virtqueue(index, num, page, useIndirect, notify, callback);
}
