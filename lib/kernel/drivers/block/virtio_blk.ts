/*
 * The virtio block driver (drivers/block/virtio_blk.c): turns block-layer requests into
 * virtio-blk requests on one virtqueue (virtio 1.x, 5.2).
 *
 * A request is a descriptor chain: a 16-byte header (type, reserved, sector) the device
 * reads, the data (one descriptor per bio_vec: physical address = page.phys + offset, so
 * the host does its I/O straight into the page frames), and one status byte the device
 * writes. Header and status must be in physical memory too: each request in flight owns a
 * 64-byte slot in a few pages set aside at probe (header at 0, the discard/write-zeroes
 * range at 16, status at 32). Completion comes with the device's IRQ: the used ring gives
 * back the chain, the status byte says how it went, and done(status) ends the bios.
 *
 * Features: VERSION_1 (required), FLUSH (a volatile write cache: the block layer sends
 * FLUSH for fsync and PREFLUSH/FUA), RO, SEG_MAX, BLK_SIZE, DISCARD and WRITE_ZEROES when
 * offered, INDIRECT_DESC (one ring slot per request, however many segments).
 */
import { pr_info, pr_warn } from '../../kernel/printk.js';
import { host } from '../../arch/cpu.js';
import { exitcall } from '../../arch/setup.js';
import { err } from '../../include/errno.js';
import { EBUSY, EINVAL, EIO } from '../../include/uapi.js';
import {
  BLK_STS_IOERR, BLK_STS_NOTSUPP, BLK_STS_OK, REQ_OP_DISCARD, REQ_OP_FLUSH, REQ_OP_READ,
  REQ_OP_WRITE, REQ_OP_WRITE_ZEROES, type BlockDriver, type request,
} from '../../include/blk.js';
import { PAGE_SIZE, alloc_page, physMem, put_page, type page } from '../../mm/page_alloc.js';
import { add_disk, del_gendisk, diskBusy, type gendisk } from '../../block/genhd.js';
import {
  VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_CFG_CAPACITY, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS,
  VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS, VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_DWZ_FLAGS,
  VIRTIO_BLK_DWZ_NUM_SECTORS, VIRTIO_BLK_DWZ_SECTOR, VIRTIO_BLK_DWZ_SIZE, VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_REQ_HDR_SIZE, VIRTIO_BLK_REQ_RESERVED,
  VIRTIO_BLK_REQ_SECTOR, VIRTIO_BLK_REQ_TYPE, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
} from '../../include/uapi/linux/virtio_blk.js';
import { VIRTIO_F_INDIRECT_DESC } from '../../include/uapi/linux/virtio_config.js';
import { VIRTIO_ID_BLOCK } from '../../include/uapi/linux/virtio_ids.js';
import { setU64 } from '../../include/uapi/linux/virtio_ring.js';
import {
  register_virtio_driver, virtio_device_ready, virtio_devices, type virtio_device,
  type virtio_driver,
} from '../virtio/virtio.js';
import { virtio_mmio_remove_all } from '../virtio/virtio_mmio.js';
import {
  VRING_INDIRECT_MAX, VRING_MAX_NUM_ONE_PAGE, type Sg, type virtqueue,
} from '../virtio/virtio_ring.js';

/* the per-request slot: header, discard/write-zeroes range, status */
const SLOT_SIZE = 64, SLOT_HDR = 0, SLOT_DWZ = 16, SLOT_STATUS = 32;
const SLOTS_PER_PAGE = PAGE_SIZE / SLOT_SIZE;

interface InFlight { rq: request; done: (status: number) => void; slot: number }

export class VirtioBlk implements BlockDriver {
  readonly name: string;
  logical_block_size = 512;
  readOnly = false;
  queue_depth = 1;
  max_segments = 1;
  max_sectors = 8;
  flush = false;
  discard = false;
  writeZeroes = false;
  disk: gendisk | null = null;
  /** A device being torn down no longer accepts requests. */
  removing = false;
  private sectors = 0;
  private vq!: virtqueue;
  private slotPages: page[] = [];
  private freeSlots: number[] = [];
  private readonly view: DataView;
  private readonly mem: Uint8Array;
  private readonly debug = host().debug?.('lkl:virtio:blk');
  readonly stats = { requests: 0, busy: 0, errors: 0 };

  constructor(readonly vdev: virtio_device) {
    this.name = vdev.name;
    this.mem = physMem();
    this.view = new DataView(this.mem.buffer, this.mem.byteOffset, this.mem.byteLength);
  }

  capacity(): number { return this.sectors; }

  /** virtblk_probe: config, queue, slots, DRIVER_OK, then the disk. */
  async probe(): Promise<void> {
    const v = this.vdev;
    this.sectors = v.cread64(VIRTIO_BLK_CFG_CAPACITY);
    if (!Number.isSafeInteger(this.sectors)) throw err(EINVAL, `${v.name}: capacity ${this.sectors} out of range`);
    if (v.hasFeature(VIRTIO_BLK_F_BLK_SIZE)) {
      const bs = v.cread32(VIRTIO_BLK_CFG_BLK_SIZE);
      if (bs >= 512 && bs <= PAGE_SIZE && (bs & (bs - 1)) === 0) this.logical_block_size = bs;
      else pr_warn(`virtio_blk: ${v.name}: ignoring invalid blk_size ${bs}`);
    }
    /* 5.2.5: without SEG_MAX a request has a single data segment */
    const segMax = v.hasFeature(VIRTIO_BLK_F_SEG_MAX) ? Math.max(1, v.cread32(VIRTIO_BLK_CFG_SEG_MAX)) : 1;
    this.readOnly = v.hasFeature(VIRTIO_BLK_F_RO);
    this.flush = v.hasFeature(VIRTIO_BLK_F_FLUSH);
    this.discard = v.hasFeature(VIRTIO_BLK_F_DISCARD) && v.cread32(VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS) > 0;
    this.writeZeroes = v.hasFeature(VIRTIO_BLK_F_WRITE_ZEROES) && v.cread32(VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS) > 0;

    this.vq = v.config.setupVq(v, 0, VRING_MAX_NUM_ONE_PAGE, (vq) => this.done(vq));
    const num = this.vq.num;
    const indirect = this.vq.useIndirect && v.hasFeature(VIRTIO_F_INDIRECT_DESC);
    /* header and status take two descriptors of the chain */
    this.max_segments = Math.max(1, Math.min(segMax, (indirect ? VRING_INDIRECT_MAX : num) - 2));
    this.max_sectors = this.max_segments * (PAGE_SIZE >>> 9);
    this.queue_depth = indirect ? num : Math.max(1, num >>> 1);
    const nslots = num;
    for (let i = 0; i < Math.ceil(nslots / SLOTS_PER_PAGE); i++) {
      const p = alloc_page();
      if (!p) { this.freeSlotPages(); throw err(EIO, `${v.name}: no memory for request headers`); }
      this.slotPages.push(p);
    }
    for (let s = nslots - 1; s >= 0; s--) this.freeSlots.push(s);
    virtio_device_ready(v);

    this.disk = await add_disk(this);
    const bytes = this.sectors * 512;
    pr_info(`virtio_blk ${v.name}: [${this.disk.disk_name}] ${this.sectors / (this.logical_block_size / 512)} ` +
      `${this.logical_block_size}-byte logical blocks (${(bytes / 1e9).toFixed(2)} GB/${(bytes / 2 ** 30).toFixed(2)} GiB)` +
      `${this.readOnly ? ' read-only' : ''}${this.flush ? ', write cache' : ''}`);
  }

  private slotAddr(slot: number): number {
    return this.slotPages[Math.floor(slot / SLOTS_PER_PAGE)]!.phys + (slot % SLOTS_PER_PAGE) * SLOT_SIZE;
  }

  /** virtio_queue_rq: one request onto the ring; false when the ring or slots are full. */
  queue_rq(rq: request, done: (status: number) => void): boolean {
    if (this.removing) { done(BLK_STS_IOERR); return true; }
    let type: number;
    switch (rq.op) {
      case REQ_OP_READ: type = VIRTIO_BLK_T_IN; break;
      case REQ_OP_WRITE: type = VIRTIO_BLK_T_OUT; break;
      case REQ_OP_FLUSH: type = VIRTIO_BLK_T_FLUSH; break;
      case REQ_OP_DISCARD: type = VIRTIO_BLK_T_DISCARD; break;
      case REQ_OP_WRITE_ZEROES: type = VIRTIO_BLK_T_WRITE_ZEROES; break;
      default: done(BLK_STS_NOTSUPP); return true;
    }
    if ((type === VIRTIO_BLK_T_DISCARD && !this.discard) || (type === VIRTIO_BLK_T_WRITE_ZEROES && !this.writeZeroes) ||
      (type === VIRTIO_BLK_T_FLUSH && !this.flush)) { done(BLK_STS_NOTSUPP); return true; }
    const slot = this.freeSlots.pop();
    if (slot === undefined) { this.stats.busy++; return false; }
    const base = this.slotAddr(slot);
    const v = this.view;
    v.setUint32(base + SLOT_HDR + VIRTIO_BLK_REQ_TYPE, type, true);
    v.setUint32(base + SLOT_HDR + VIRTIO_BLK_REQ_RESERVED, 0, true);
    /* 5.2.6.4: FLUSH carries sector 0 */
    setU64(v, base + SLOT_HDR + VIRTIO_BLK_REQ_SECTOR, type === VIRTIO_BLK_T_FLUSH ? 0 : rq.sector);
    /* anything but a status the device wrote reads as an error */
    this.mem[base + SLOT_STATUS] = 0xff;
    const out: Sg[] = [{ addr: base + SLOT_HDR, len: VIRTIO_BLK_REQ_HDR_SIZE }];
    const inn: Sg[] = [];
    if (type === VIRTIO_BLK_T_IN || type === VIRTIO_BLK_T_OUT) {
      const data = type === VIRTIO_BLK_T_IN ? inn : out;
      for (const b of rq.bios) for (const bv of b.bi_io_vec) data.push({ addr: bv.page.phys + bv.offset, len: bv.len });
    } else if (type === VIRTIO_BLK_T_DISCARD || type === VIRTIO_BLK_T_WRITE_ZEROES) {
      const r = base + SLOT_DWZ;
      setU64(v, r + VIRTIO_BLK_DWZ_SECTOR, rq.sector);
      v.setUint32(r + VIRTIO_BLK_DWZ_NUM_SECTORS, rq.nr_sectors, true);
      v.setUint32(r + VIRTIO_BLK_DWZ_FLAGS, 0, true);
      out.push({ addr: r, len: VIRTIO_BLK_DWZ_SIZE });
    }
    inn.push({ addr: base + SLOT_STATUS, len: 1 });
    const token: InFlight = { rq, done, slot };
    if (!this.vq.addSgs(out, inn, token)) {
      this.freeSlots.push(slot);
      this.stats.busy++;
      return false;
    }
    this.stats.requests++;
    this.vq.kick();
    return true;
  }

  /** virtblk_done: the IRQ's half — every finished chain ends its request. */
  private done(vq: virtqueue): void {
    for (let b = vq.getBuf(); b; b = vq.getBuf()) {
      const t = b.token as InFlight;
      const st = this.mem[this.slotAddr(t.slot) + SLOT_STATUS]!;
      this.freeSlots.push(t.slot);
      const sts = st === VIRTIO_BLK_S_OK ? BLK_STS_OK : st === VIRTIO_BLK_S_UNSUPP ? BLK_STS_NOTSUPP : BLK_STS_IOERR;
      if (sts !== BLK_STS_OK) {
        this.stats.errors++;
        this.debug?.(`${this.name}: request op ${t.rq.op} sector ${t.rq.sector}+${t.rq.nr_sectors}: status ${st}`);
      }
      t.done(sts);
    }
  }

  /** virtblk_remove: the disk goes, then the device is reset and what it held fails. */
  async remove(force: boolean): Promise<void> {
    if (this.disk) {
      if (!force && diskBusy(this.disk)) throw err(EBUSY);
      await del_gendisk(this.disk, force, force);
      this.disk = null;
    }
    this.removing = true;
    this.vdev.config.reset();
    for (const t of this.vq ? this.vq.detachUnused() : []) {
      const f = t as InFlight;
      this.freeSlots.push(f.slot);
      f.done(BLK_STS_IOERR);
    }
    this.freeSlotPages();
  }

  private freeSlotPages(): void {
    for (const p of this.slotPages.splice(0)) put_page(p);
    this.freeSlots.length = 0;
  }
}

const forceRemove = new WeakSet<virtio_device>();

export const virtio_blk: virtio_driver = {
  name: 'virtio_blk',
  deviceId: VIRTIO_ID_BLOCK,
  feature_table: [VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH,
    VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_F_INDIRECT_DESC],
  async probe(vdev: virtio_device): Promise<void> {
    const vblk = new VirtioBlk(vdev);
    vdev.priv = vblk;
    await vblk.probe();
  },
  async remove(vdev: virtio_device): Promise<void> {
    const vblk = vdev.priv as VirtioBlk | null;
    if (vblk) await vblk.remove(forceRemove.has(vdev));
    vdev.priv = null;
  },
  /** For the host: the disk's name and its partitions, as plain data. */
  describe(vdev: virtio_device) {
    const disk = vdev.priv instanceof VirtioBlk ? vdev.priv.disk : null;
    if (!disk) return {};
    const partitions = [...disk.parts].sort(([a], [b]) => a - b).map(([partno, b]) => ({ partno, name: b.bd_name }));
    return { disk: { name: disk.disk_name, partitions } };
  },
  config_changed(vdev: virtio_device): void {
    pr_warn(`virtio_blk ${vdev.name}: configuration changed (capacity changes are not supported)`);
  },
};
register_virtio_driver(virtio_blk);


/*
 * At halt, after the filesystems are unmounted (their exit calls run at higher levels):
 * every disk is written back and let go, and the devices are reset, so the host can close
 * its stores with nothing in flight.
 */
export const EXIT_BLOCK = 2;
exitcall(EXIT_BLOCK, 'virtio_blk', async () => {
  for (const vdev of virtio_devices()) if (vdev.driver === virtio_blk) forceRemove.add(vdev);
  await virtio_mmio_remove_all();
});
