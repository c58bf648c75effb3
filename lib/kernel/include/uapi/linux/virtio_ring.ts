/*
 * The split virtqueue (virtio 1.x, 2.7) as it lies in physical memory: a descriptor table,
 * the available ring the driver writes and the used ring the device writes. Offsets,
 * sizes, alignment, and accessors over a Uint8Array view of physical memory (physical
 * address = byte offset). Both halves use this file: the kernel's driver to post buffers,
 * the host's device to consume them. Pure; imports nothing.
 *
 * All fields are little-endian. The two ring indices are read and written with Atomics
 * when memory is a SharedArrayBuffer: they are the publication points (ring entries are
 * written before idx moves, and read after it is seen), so a device running in a worker
 * thread sees whole entries.
 */

/* 2.7.5 The Virtqueue Descriptor Table: struct virtq_desc */
export const VIRTQ_DESC_ADDR = 0;    /* le64 guest-physical address */
export const VIRTQ_DESC_LEN = 8;     /* le32 */
export const VIRTQ_DESC_FLAGS = 12;  /* le16 */
export const VIRTQ_DESC_NEXT = 14;   /* le16, valid with VIRTQ_DESC_F_NEXT */
export const VIRTQ_DESC_SIZE = 16;

export const VIRTQ_DESC_F_NEXT = 1;      /* buffer continues via the next field */
export const VIRTQ_DESC_F_WRITE = 2;     /* device write-only (otherwise device read-only) */
export const VIRTQ_DESC_F_INDIRECT = 4;  /* buffer holds a table of descriptors (2.7.5.3) */

/* 2.7.6 The Virtqueue Available Ring: struct virtq_avail */
export const VIRTQ_AVAIL_FLAGS = 0;  /* le16 */
export const VIRTQ_AVAIL_IDX = 2;    /* le16: where the driver puts the next entry, mod 2^16 */
export const VIRTQ_AVAIL_RING = 4;   /* le16 ring[num], then le16 used_event */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

/* 2.7.8 The Virtqueue Used Ring: struct virtq_used */
export const VIRTQ_USED_FLAGS = 0;   /* le16 */
export const VIRTQ_USED_IDX = 2;     /* le16 */
export const VIRTQ_USED_RING = 4;    /* struct virtq_used_elem ring[num], then le16 avail_event */
export const VIRTQ_USED_ELEM_ID = 0;   /* le32: head of the descriptor chain */
export const VIRTQ_USED_ELEM_LEN = 4;  /* le32: bytes written into device-writable buffers */
export const VIRTQ_USED_ELEM_SIZE = 8;
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/* 2.7 Alignment requirements of the three parts */
export const VIRTQ_DESC_ALIGN = 16;
export const VIRTQ_AVAIL_ALIGN = 2;
export const VIRTQ_USED_ALIGN = 4;

/* 2.7 "Queue Size ... The maximum Queue Size value is 32768"; split rings use powers of 2 */
export const VIRTQ_MAX_SIZE = 32768;

export const descTableSize = (num: number) => VIRTQ_DESC_SIZE * num;
export const availRingSize = (num: number) => 6 + 2 * num;
export const usedRingSize = (num: number) => 6 + VIRTQ_USED_ELEM_SIZE * num;

export const alignUp = (x: number, a: number) => Math.ceil(x / a) * a;

export function isValidQueueSize(num: number): boolean {
  return Number.isInteger(num) && num >= 1 && num <= VIRTQ_MAX_SIZE && (num & (num - 1)) === 0;
}

/** Where each part of a queue lies when the three are placed one after another. */
export interface VringLayout {
  num: number;
  descOffset: number;
  descSize: number;
  availOffset: number;
  availSize: number;
  usedOffset: number;
  usedSize: number;
  /** Bytes from descOffset to the end of the used ring. */
  totalSize: number;
}

/**
 * The contiguous layout of a queue of `num` entries starting at offset 0 (add the base
 * address, which must itself be 16-aligned). `usedAlign` may be raised, e.g. to a page,
 * as legacy virtio required; 4 is what 1.x requires.
 */
export function vring_size(num: number, usedAlign = VIRTQ_USED_ALIGN): VringLayout {
  if (!isValidQueueSize(num)) throw new RangeError(`virtqueue size ${num} is not a power of 2 in 1..32768`);
  const descOffset = 0, descSize = descTableSize(num);
  const availOffset = alignUp(descOffset + descSize, VIRTQ_AVAIL_ALIGN), availSize = availRingSize(num);
  const usedOffset = alignUp(availOffset + availSize, Math.max(usedAlign, VIRTQ_USED_ALIGN));
  const usedSize = usedRingSize(num);
  return { num, descOffset, descSize, availOffset, availSize, usedOffset, usedSize,
    totalSize: usedOffset + usedSize };
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/*
 * A host may hand over plain ArrayBuffer memory (a browser page that is not cross-origin
 * isolated has no SharedArrayBuffer global at all, so the name must not be evaluated there).
 */
const isShared = (b: ArrayBufferLike): boolean =>
  typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;

/** A descriptor as read out of a table. */
export interface vring_desc {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

/**
 * Accessors for one split virtqueue in physical memory. Addresses are those programmed
 * into QueueDesc/QueueDriver/QueueDevice; the caller has checked that each part lies
 * inside `mem`. Ring positions are taken modulo num here; indices are free-running u16s.
 */
export class vring {
  readonly view: DataView;
  readonly u16: Uint16Array | null;

  constructor(readonly mem: Uint8Array, readonly num: number,
    readonly desc: number, readonly avail: number, readonly used: number) {
    this.view = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    this.u16 = littleEndianHost && isShared(mem.buffer) && mem.byteOffset % 2 === 0
      ? new Uint16Array(mem.buffer, mem.byteOffset, Math.floor(mem.byteLength / 2)) : null;
  }

  /** Physical address of descriptor i in the table (or in an indirect table at `table`). */
  descAddr(i: number, table = this.desc): number {
    return table + VIRTQ_DESC_SIZE * i;
  }

  readDesc(i: number, table = this.desc): vring_desc {
    return readDesc(this.view, this.descAddr(i, table));
  }

  writeDesc(i: number, d: vring_desc, table = this.desc): void {
    writeDesc(this.view, this.descAddr(i, table), d);
  }

  /* The avail ring: written by the driver */
  get availFlags(): number { return this.view.getUint16(this.avail + VIRTQ_AVAIL_FLAGS, true); }
  set availFlags(v: number) { this.view.setUint16(this.avail + VIRTQ_AVAIL_FLAGS, v, true); }
  get availIdx(): number { return this.load16(this.avail + VIRTQ_AVAIL_IDX); }
  set availIdx(v: number) { this.store16(this.avail + VIRTQ_AVAIL_IDX, v); }
  availRing(pos: number): number {
    return this.view.getUint16(this.avail + VIRTQ_AVAIL_RING + 2 * (pos % this.num), true);
  }
  setAvailRing(pos: number, head: number): void {
    this.view.setUint16(this.avail + VIRTQ_AVAIL_RING + 2 * (pos % this.num), head, true);
  }
  /** used_event: only meaningful with VIRTIO_F_RING_EVENT_IDX. */
  get usedEvent(): number { return this.view.getUint16(this.avail + VIRTQ_AVAIL_RING + 2 * this.num, true); }
  set usedEvent(v: number) { this.view.setUint16(this.avail + VIRTQ_AVAIL_RING + 2 * this.num, v, true); }

  /* The used ring: written by the device */
  get usedFlags(): number { return this.view.getUint16(this.used + VIRTQ_USED_FLAGS, true); }
  set usedFlags(v: number) { this.view.setUint16(this.used + VIRTQ_USED_FLAGS, v, true); }
  get usedIdx(): number { return this.load16(this.used + VIRTQ_USED_IDX); }
  set usedIdx(v: number) { this.store16(this.used + VIRTQ_USED_IDX, v); }
  usedElem(pos: number): { id: number; len: number } {
    const at = this.used + VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * (pos % this.num);
    return { id: this.view.getUint32(at + VIRTQ_USED_ELEM_ID, true),
      len: this.view.getUint32(at + VIRTQ_USED_ELEM_LEN, true) };
  }
  setUsedElem(pos: number, id: number, len: number): void {
    const at = this.used + VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * (pos % this.num);
    this.view.setUint32(at + VIRTQ_USED_ELEM_ID, id, true);
    this.view.setUint32(at + VIRTQ_USED_ELEM_LEN, len, true);
  }
  /** avail_event: only meaningful with VIRTIO_F_RING_EVENT_IDX. */
  get availEvent(): number { return this.view.getUint16(this.used + VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * this.num, true); }
  set availEvent(v: number) { this.view.setUint16(this.used + VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * this.num, v, true); }

  private load16(addr: number): number {
    return this.u16 ? Atomics.load(this.u16, addr / 2) : this.view.getUint16(addr, true);
  }
  private store16(addr: number, v: number): void {
    if (this.u16) Atomics.store(this.u16, addr / 2, v & 0xffff);
    else this.view.setUint16(addr, v & 0xffff, true);
  }
}

/** Reads a le64 that must fit a number; values past 2^53 come back inexact but huge. */
export function getU64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x100000000;
}
export function setU64(view: DataView, at: number, v: number): void {
  view.setUint32(at, v % 0x100000000, true);
  view.setUint32(at + 4, Math.floor(v / 0x100000000), true);
}

export function readDesc(view: DataView, at: number): vring_desc {
  return {
    addr: getU64(view, at + VIRTQ_DESC_ADDR),
    len: view.getUint32(at + VIRTQ_DESC_LEN, true),
    flags: view.getUint16(at + VIRTQ_DESC_FLAGS, true),
    next: view.getUint16(at + VIRTQ_DESC_NEXT, true),
  };
}

export function writeDesc(view: DataView, at: number, d: vring_desc): void {
  setU64(view, at + VIRTQ_DESC_ADDR, d.addr);
  view.setUint32(at + VIRTQ_DESC_LEN, d.len, true);
  view.setUint16(at + VIRTQ_DESC_FLAGS, d.flags, true);
  view.setUint16(at + VIRTQ_DESC_NEXT, d.next, true);
}
