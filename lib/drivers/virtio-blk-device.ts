/*
 * The host half of virtio-blk (virtio 1.x, 5.2; tools/lkl/lib/virtio_blk.c's role): takes
 * request chains off the queue, does their I/O on a BlockStore straight into and out of
 * the kernel's physical memory (views of its SharedArrayBuffer: no copy), writes the
 * status byte and completes. Requests run concurrently and complete in whatever order
 * the store finishes them; ordering is the driver's business, as with real disks (FLUSH
 * covers the writes completed before it was issued).
 *
 * A request is: a 16-byte device-readable header (type, reserved, sector), data, and a
 * device-writable status byte at the very end. Buffers may be framed any way the driver
 * likes (2.6.4): header and data are read as one byte stream, status is the last byte.
 *
 * Platform-free, shared by the Node host (virtio-blk.ts: VirtioBlkHost) and the browser
 * page (lib/web): the store and the DevicePlatform come from the caller.
 */
import {
  VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_CFG_CAPACITY, VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT,
  VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, VIRTIO_BLK_CFG_MAX_DISCARD_SEG,
  VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS, VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG,
  VIRTIO_BLK_CFG_NUM_QUEUES, VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_CFG_SIZE, VIRTIO_BLK_DWZ_FLAGS,
  VIRTIO_BLK_DWZ_NUM_SECTORS, VIRTIO_BLK_DWZ_SECTOR, VIRTIO_BLK_DWZ_SIZE, VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_REQ_HDR_SIZE, VIRTIO_BLK_REQ_SECTOR,
  VIRTIO_BLK_REQ_TYPE, VIRTIO_BLK_SECTOR_SIZE, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from '../kernel/include/uapi/linux/virtio_blk.js';
import {
  VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, features,
} from '../kernel/include/uapi/linux/virtio_config.js';
import { VIRTIO_ID_BLOCK } from '../kernel/include/uapi/linux/virtio_ids.js';
import { getU64, setU64 } from '../kernel/include/uapi/linux/virtio_ring.js';
import type { BlockStore } from './block-store.js';
import {
  VirtioMmioHost, type DevicePlatform, type HostVirtqueue, type VirtioChainError, type VirtqChain,
  type VirtqSeg,
} from './virtio-mmio-host.js';

export interface VirtioBlkOptions {
  /** Device name in messages (default "vda"). */
  name?: string;
  /** GET_ID answer, at most 20 bytes (default: the name). */
  serial?: string;
  /** QueueNumMax (default 256). */
  queueNumMax?: number;
  /** seg_max: data buffers per request (default queueNumMax - 2, leaving header and status). */
  segMax?: number;
  /** blk_size: the logical block size advertised (default 512). */
  blkSize?: number;
  /** Offer VIRTIO_F_INDIRECT_DESC (default true). */
  indirect?: boolean;
  onChainError?: (e: VirtioChainError) => void;
}

export interface VirtioBlkStats {
  in: number;
  out: number;
  flush: number;
  getId: number;
  discard: number;
  writeZeroes: number;
  /** Requests answered VIRTIO_BLK_S_UNSUPP. */
  unsupported: number;
  /** Requests answered VIRTIO_BLK_S_IOERR. */
  ioErrors: number;
}

/* Largest DISCARD / WRITE_ZEROES segment advertised: 2 GiB in sectors */
const MAX_DWZ_SECTORS = 0x400000;
const ZERO_CHUNK = 1 << 20;
let zeroes: Uint8Array | null = null;

/** A request the device answers with a status other than OK, with the reason for the log. */
class BlkError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

export class VirtioBlkDevice extends VirtioMmioHost {
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly serial: string;
  /** Sectors of 512 bytes; a partial last sector is not exposed. */
  readonly capacity: number;
  readonly segMax: number;
  readonly blkSize: number;
  readonly blkStats: VirtioBlkStats = { in: 0, out: 0, flush: 0, getId: 0, discard: 0, writeZeroes: 0, unsupported: 0, ioErrors: 0 };
  private readonly offered: bigint;
  private readonly cfg: Uint8Array;

  constructor(readonly store: BlockStore, platform: DevicePlatform, opts: VirtioBlkOptions = {}) {
    const queueNumMax = opts.queueNumMax ?? 256;
    super({
      name: opts.name ?? 'vda', numQueues: 1, queueNumMax, platform, log: platform.logger('lkl:virtio:blk'),
      onChainError: opts.onChainError,
    });
    this.serial = opts.serial ?? this.name;
    this.segMax = opts.segMax ?? Math.max(1, queueNumMax - 2);
    this.blkSize = opts.blkSize ?? VIRTIO_BLK_SECTOR_SIZE;
    if (this.blkSize < VIRTIO_BLK_SECTOR_SIZE || (this.blkSize & (this.blkSize - 1)) /* bits32: a power-of-two test; blk_size is a le32 */) {
      throw new RangeError(`blk_size ${this.blkSize} is not a power of 2 >= 512`);
    }
    this.capacity = Math.floor(store.size / VIRTIO_BLK_SECTOR_SIZE);

    const bits = [VIRTIO_F_VERSION_1, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE];
    if (opts.indirect ?? true) bits.push(VIRTIO_F_INDIRECT_DESC);
    if (store.readOnly) bits.push(VIRTIO_BLK_F_RO);
    else {
      if (store.discard) bits.push(VIRTIO_BLK_F_DISCARD);
      bits.push(VIRTIO_BLK_F_WRITE_ZEROES);  /* writeZeroes or, failing that, zero buffers */
    }
    this.offered = features(...bits);

    /* 5.2.4 struct virtio_blk_config */
    this.cfg = new Uint8Array(VIRTIO_BLK_CFG_SIZE);
    const v = new DataView(this.cfg.buffer);
    setU64(v, VIRTIO_BLK_CFG_CAPACITY, this.capacity);
    v.setUint32(VIRTIO_BLK_CFG_SEG_MAX, this.segMax, true);
    v.setUint32(VIRTIO_BLK_CFG_BLK_SIZE, this.blkSize, true);
    v.setUint16(VIRTIO_BLK_CFG_NUM_QUEUES, 1, true);
    const align = this.blkSize / VIRTIO_BLK_SECTOR_SIZE;
    if (!store.readOnly) {
      if (store.discard) {
        v.setUint32(VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, MAX_DWZ_SECTORS, true);
        v.setUint32(VIRTIO_BLK_CFG_MAX_DISCARD_SEG, this.segMax, true);
        v.setUint32(VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT, align, true);
      }
      v.setUint32(VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS, MAX_DWZ_SECTORS, true);
      v.setUint32(VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG, this.segMax, true);
    }
    this.log('%s: %d sectors%s, features %s', this.name, this.capacity, store.readOnly ? ' (ro)' : '', this.offered.toString(16));
  }

  protected get deviceFeatures(): bigint { return this.offered; }
  protected get config(): Uint8Array { return this.cfg; }

  protected queueNotify(q: HostVirtqueue): void {
    for (let chain = q.pop(); chain; chain = q.pop()) this.track(this.handle(q, chain));
  }

  protected override async closeBackend(): Promise<void> {
    await this.store.close();
  }

  /** Serves one request; never rejects. */
  private async handle(q: HostVirtqueue, chain: VirtqChain): Promise<void> {
    const mem = this.mem!;
    if (chain.writableLen < 1) {
      this.reportChainError(q.index, chain.head, 'request without a device-writable status byte');
      q.push(chain, 0);
      return;
    }
    const lastW = chain.writable[chain.writable.length - 1];
    const statusAddr = lastW.addr + lastW.len - 1;
    const inData = sliceSegs(chain.writable, 0, chain.writableLen - 1);
    let status = VIRTIO_BLK_S_OK, written = 0, type = -1;
    try {
      if (chain.readableLen < VIRTIO_BLK_REQ_HDR_SIZE) {
        this.reportChainError(q.index, chain.head, `request header of ${chain.readableLen} bytes, not ${VIRTIO_BLK_REQ_HDR_SIZE}`);
        throw new BlkError(VIRTIO_BLK_S_IOERR, 'short header');
      }
      const hdr = new DataView(gather(mem, chain.readable, 0, VIRTIO_BLK_REQ_HDR_SIZE).buffer);
      type = hdr.getUint32(VIRTIO_BLK_REQ_TYPE, true);
      const sector = getU64(hdr, VIRTIO_BLK_REQ_SECTOR);
      const outData = sliceSegs(chain.readable, VIRTIO_BLK_REQ_HDR_SIZE, chain.readableLen - VIRTIO_BLK_REQ_HDR_SIZE);
      written = await this.request(type, sector, inData, outData);
    } catch (e) {
      if (e instanceof BlkError) status = e.status;
      else status = VIRTIO_BLK_S_IOERR;
      if (status === VIRTIO_BLK_S_IOERR) this.blkStats.ioErrors++;
      else this.blkStats.unsupported++;
      written = 0;
      this.log('%s: request %d (type %d) failed with status %d: %s', this.name, chain.head, type, status, (e as Error).message);
    }
    /* a reset since the request was popped: its memory is no longer ours to write */
    if (chain.epoch !== q.epoch) {
      this.log('%s: request %d finished after a reset; dropped', this.name, chain.head);
      return;
    }
    mem[statusAddr] = status;
    q.push(chain, written + 1);
  }

  /** Performs one request; returns the data bytes written into device-writable buffers. */
  private async request(type: number, sector: number, inData: VirtqSeg[], outData: VirtqSeg[]): Promise<number> {
    const mem = this.mem!;
    switch (type) {
      case VIRTIO_BLK_T_IN: {
        this.blkStats.in++;
        const len = segsLen(inData);
        const pos = this.range(sector, len);
        const segs = coalesce(inData);
        if (segs.length > 1 && this.store.readv) await this.store.readv(segs.map((s) => view(mem, s)), pos);
        else await settleAll(withOffsets(segs).map(([s, off]) => this.store.read(view(mem, s), pos + off)));
        return len;
      }
      case VIRTIO_BLK_T_OUT: {
        this.blkStats.out++;
        if (this.store.readOnly) throw new BlkError(VIRTIO_BLK_S_IOERR, 'write to a read-only device');
        const len = segsLen(outData);
        const pos = this.range(sector, len);
        const segs = coalesce(outData);
        if (segs.length > 1 && this.store.writev) await this.store.writev(segs.map((s) => view(mem, s)), pos);
        else await settleAll(withOffsets(segs).map(([s, off]) => this.store.write(view(mem, s), pos + off)));
        return 0;
      }
      case VIRTIO_BLK_T_FLUSH:
        this.blkStats.flush++;
        await this.store.flush();
        return 0;
      case VIRTIO_BLK_T_GET_ID: {
        this.blkStats.getId++;
        const id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
        id.set(new TextEncoder().encode(this.serial).subarray(0, VIRTIO_BLK_ID_BYTES));
        return scatter(mem, inData, id);
      }
      case VIRTIO_BLK_T_DISCARD:
      case VIRTIO_BLK_T_WRITE_ZEROES:
        return this.discardOrZero(type, outData);
      default:
        throw new BlkError(VIRTIO_BLK_S_UNSUPP, `unsupported request type ${type}`);
    }
  }

  private async discardOrZero(type: number, data: VirtqSeg[]): Promise<number> {
    const discard = type === VIRTIO_BLK_T_DISCARD;
    if (discard) this.blkStats.discard++;
    else this.blkStats.writeZeroes++;
    if (!this.negotiated(discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES)) {
      throw new BlkError(VIRTIO_BLK_S_UNSUPP, `${discard ? 'DISCARD' : 'WRITE_ZEROES'} not negotiated`);
    }
    if (this.store.readOnly) throw new BlkError(VIRTIO_BLK_S_IOERR, 'write to a read-only device');
    const len = segsLen(data);
    if (len === 0 || len % VIRTIO_BLK_DWZ_SIZE) throw new BlkError(VIRTIO_BLK_S_IOERR, `segment data of ${len} bytes`);
    const n = len / VIRTIO_BLK_DWZ_SIZE;
    if (n > this.segMax) throw new BlkError(VIRTIO_BLK_S_UNSUPP, `${n} segments, max ${this.segMax}`);
    const raw = gather(this.mem!, data, 0, len);
    const v = new DataView(raw.buffer);
    const ranges: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      const at = i * VIRTIO_BLK_DWZ_SIZE;
      const sector = getU64(v, at + VIRTIO_BLK_DWZ_SECTOR);
      const sectors = v.getUint32(at + VIRTIO_BLK_DWZ_NUM_SECTORS, true);
      const flags = v.getUint32(at + VIRTIO_BLK_DWZ_FLAGS, true);
      /* 5.2.6.2: unmap means something only for WRITE_ZEROES; other bits are reserved */
      if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP || (discard && flags)) {
        throw new BlkError(VIRTIO_BLK_S_UNSUPP, `segment flags ${flags}`);
      }
      if (sectors > MAX_DWZ_SECTORS) throw new BlkError(VIRTIO_BLK_S_IOERR, `segment of ${sectors} sectors`);
      ranges.push([this.range(sector, sectors * VIRTIO_BLK_SECTOR_SIZE), sectors * VIRTIO_BLK_SECTOR_SIZE]);
    }
    await settleAll(ranges.map(([pos, bytes]) => discard ? this.store.discard!(pos, bytes) : this.zero(pos, bytes)));
    return 0;
  }

  private async zero(pos: number, len: number): Promise<void> {
    if (this.store.writeZeroes) return this.store.writeZeroes(pos, len);
    zeroes ??= new Uint8Array(ZERO_CHUNK);
    for (let done = 0; done < len; done += ZERO_CHUNK) {
      await this.store.write(zeroes.subarray(0, Math.min(ZERO_CHUNK, len - done)), pos + done);
    }
  }

  /** Byte position of an I/O of len bytes at sector; IOERR unless whole sectors within capacity. */
  private range(sector: number, len: number): number {
    if (len % VIRTIO_BLK_SECTOR_SIZE) throw new BlkError(VIRTIO_BLK_S_IOERR, `length ${len} is not a multiple of 512`);
    const sectors = len / VIRTIO_BLK_SECTOR_SIZE;
    if (!Number.isSafeInteger(sector) || sector > this.capacity || sectors > this.capacity - sector) {
      throw new BlkError(VIRTIO_BLK_S_IOERR, `sectors ${sector}+${sectors} beyond capacity ${this.capacity}`);
    }
    return sector * VIRTIO_BLK_SECTOR_SIZE;
  }
}

/*
 * Waits for every operation, then fails if any did. Returning at the first failure would
 * complete the request while other parts still read or write its pages.
 */
async function settleAll(ps: Promise<void>[]): Promise<void> {
  const rs = await Promise.allSettled(ps);
  for (const r of rs) if (r.status === 'rejected') throw r.reason;
}

function view(mem: Uint8Array, s: VirtqSeg): Uint8Array {
  return mem.subarray(s.addr, s.addr + s.len);
}

function segsLen(segs: VirtqSeg[]): number {
  let n = 0;
  for (const s of segs) n += s.len;
  return n;
}

/** Each segment with its byte offset in the stream. */
function withOffsets(segs: VirtqSeg[]): [VirtqSeg, number][] {
  let off = 0;
  return segs.map((s) => {
    const r: [VirtqSeg, number] = [s, off];
    off += s.len;
    return r;
  });
}

/** Merges buffers that follow each other in memory: one store call instead of several. */
function coalesce(segs: VirtqSeg[]): VirtqSeg[] {
  const out: VirtqSeg[] = [];
  for (const s of segs) {
    const last = out[out.length - 1];
    if (last && last.addr + last.len === s.addr) last.len += s.len;
    else out.push({ addr: s.addr, len: s.len });
  }
  return out;
}

/** The segments covering bytes [from, from+len) of the stream. */
function sliceSegs(segs: VirtqSeg[], from: number, len: number): VirtqSeg[] {
  const out: VirtqSeg[] = [];
  let off = 0;
  const end = from + len;
  for (const s of segs) {
    const a = Math.max(from, off), b = Math.min(end, off + s.len);
    if (a < b) out.push({ addr: s.addr + (a - off), len: b - a });
    off += s.len;
    if (off >= end) break;
  }
  return out;
}

/** Copies bytes [from, from+len) of the stream out of memory (headers: small). */
function gather(mem: Uint8Array, segs: VirtqSeg[], from: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let at = 0;
  for (const s of sliceSegs(segs, from, len)) {
    out.set(view(mem, s), at);
    at += s.len;
  }
  return out;
}

/** Copies src into the stream as far as it reaches; returns the bytes copied. */
function scatter(mem: Uint8Array, segs: VirtqSeg[], src: Uint8Array): number {
  let at = 0;
  for (const s of segs) {
    if (at >= src.length) break;
    const n = Math.min(s.len, src.length - at);
    mem.set(src.subarray(at, at + n), s.addr);
    at += n;
  }
  return at;
}
