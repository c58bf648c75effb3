/*
 * The request queue (block/blk-core.c, blk-mq.c, blk-merge.c, blk-flush.c, reduced to one
 * hardware queue per disk and the "none" scheduler): how a bio becomes a driver request.
 *
 *   submit_bio ──► checks, partition remap ──► split to the queue limits ──► flush machinery
 *             ──► merge into a request that is not yet dispatched, or allocate one (sleeping
 *                 while queue_depth requests exist) ──► dispatch (driver.queue_rq) ──► device
 *   device IRQ ──► driver calls done(status) ──► bi_end_io of every bio (IRQ context)
 *             ──► free the tag, wake a submitter, dispatch what waits.
 *
 * Plugging comes for free from the execution model: new requests are not handed to the
 * driver at once but at the next CPU hand-over, through an IRQ we raise ourselves (the
 * "block softirq"). Everything a thread submits before it sleeps therefore sits in the
 * queue together and merges — Linux's plug, flushed when the task schedules — without an
 * explicit blk_start_plug, and without the deadlock an explicit plug has when its owner
 * sleeps waiting for I/O it has not yet issued.
 *
 * Flushes (blk-flush.c): with a volatile write cache (driver.flush), a PREFLUSH bio runs as
 * FLUSH then the write, and a FUA write as the write then FLUSH (virtio-blk has no FUA);
 * an empty PREFLUSH bio is one FLUSH, and concurrent empty flushes share one FLUSH request
 * when one is still waiting to be dispatched (it covers every write completed before it).
 * Without a write cache PREFLUSH/FUA are no-ops and an empty flush completes at once.
 *
 * Errors: a bio ends with a blk_status_t; callers that wait (submit_bio_wait) turn it into an
 * errno (EIO for I/O errors) with blk_status_to_errno.
 *
 * May touch: arch (IRQs, timers), wait queues; drivers through BlockDriver only.
 */
import { pr_err } from '../kernel/printk.js';
import { alloc_irq_number, request_irq, trigger_irq, in_irq } from '../arch/irq.js';
import { INIT_CORE, initcall } from '../arch/setup.js';
import { wait_queue_head, wait_event } from '../kernel/wait.js';
import { add_timer } from '../kernel/timer.js';
import {
  BLK_STS_IOERR, BLK_STS_MEDIUM, BLK_STS_NOSPC, BLK_STS_NOTSUPP, BLK_STS_OK, BLK_STS_RESOURCE,
  bio, REQ_FUA, REQ_OP_DISCARD, REQ_OP_FLUSH, REQ_OP_MASK, REQ_OP_READ, REQ_OP_WRITE,
  REQ_OP_WRITE_ZEROES, REQ_PREFLUSH, SECTOR_SIZE, type BlockDriver, request,
} from '../include/blk.js';
import { EIO, ENODATA, ENOMEM, ENOSPC, EOPNOTSUPP } from '../include/uapi.js';

/** Largest bio, in pages (BIO_MAX_VECS). */
export const BIO_MAX_VECS = 256;

/** blk_status_to_errno. */
export function blk_status_to_errno(sts: number): number {
  switch (sts) {
    case BLK_STS_OK: return 0;
    case BLK_STS_NOTSUPP: return EOPNOTSUPP;
    case BLK_STS_NOSPC: return ENOSPC;
    case BLK_STS_RESOURCE: return ENOMEM;
    case BLK_STS_MEDIUM: return ENODATA;
    default: return EIO;
  }
}

export function op_is_write(op: number): boolean {
  return op === REQ_OP_WRITE || op === REQ_OP_DISCARD || op === REQ_OP_WRITE_ZEROES || op === REQ_OP_FLUSH;
}

export interface QueueStats {
  bios: number;
  requests: number;
  backMerges: number;
  frontMerges: number;
  splits: number;
  flushes: number;
  sharedFlushes: number;
  errors: number;
  /** Most requests dispatched and not completed at one time. */
  maxInFlight: number;
}

/** struct request_queue + its single blk_mq_hw_ctx. */
export class request_queue {
  /** Requests built and not yet dispatched, in submission order (the merge candidates). */
  readonly pending: request[] = [];
  /** Dispatched to the driver and not completed. */
  inFlight = 0;
  /** Tagged requests in existence (pending + in flight). */
  tags = 0;
  readonly tagWq = new wait_queue_head();
  /** Wakes those waiting for the queue to drain (blk_mq_freeze_queue's wait). */
  readonly idleWq = new wait_queue_head();
  dying = false;
  dispatchScheduled = false;
  /** A busy driver with nothing in flight is retried from a timer. */
  private retryArmed = false;
  readonly stats: QueueStats = { bios: 0, requests: 0, backMerges: 0, frontMerges: 0, splits: 0, flushes: 0, sharedFlushes: 0, errors: 0, maxInFlight: 0 };
  constructor(readonly driver: BlockDriver, readonly name: string) {}

  get depth(): number { return Math.max(1, this.driver.queue_depth); }
  get max_sectors(): number { return Math.max(8, this.driver.max_sectors); }
  get max_segments(): number { return Math.max(1, Math.min(this.driver.max_segments, BIO_MAX_VECS)); }

  /** Hand pending requests to the driver, in order, until it is busy. IRQ or kernel context. */
  run(): void {
    this.dispatchScheduled = false;
    while (this.pending.length) {
      const rq = this.pending[0]!;
      if (this.dying) {
        this.pending.shift();
        this.finish(rq, BLK_STS_IOERR, false);
        continue;
      }
      rq.mergeable = false;
      this.pending.shift();
      this.inFlight++;
      if (this.inFlight > this.stats.maxInFlight) this.stats.maxInFlight = this.inFlight;
      let completed = false;
      const ok = this.driver.queue_rq(rq, (status) => {
        if (completed) { pr_err(`blk: ${this.name}: request completed twice`); return; }
        completed = true;
        this.finish(rq, status, true);
      });
      if (!ok) {
        /* BLK_STS_RESOURCE: back at the head, retried when something completes */
        this.inFlight--;
        this.pending.unshift(rq);
        if (this.inFlight === 0 && !this.retryArmed) {
          this.retryArmed = true;
          add_timer(1e6, () => { this.retryArmed = false; this.scheduleDispatch(); });
        }
        return;
      }
    }
  }

  /** blk_mq_end_request + tag release; then whatever was waiting goes out. */
  private finish(rq: request, status: number, dispatched: boolean): void {
    if (dispatched) this.inFlight--;
    if (rq.tagged) { this.tags--; this.tagWq.wakeUp(1); }
    if (status !== BLK_STS_OK) this.stats.errors++;
    try { rq.end(status); } catch (e) {
      pr_err(`BUG: blk: ${this.name}: end_io threw: ${(e as Error)?.stack ?? e}`);
    }
    if (this.pending.length) this.run();
    if (this.inFlight === 0 && this.pending.length === 0) this.idleWq.wakeUpAll();
  }

  /** Dispatch at the next hand-over (see the header: this is the plug). */
  scheduleDispatch(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    if (in_irq()) { this.run(); return; }
    raiseBlockSoftirq(this);
  }

  /** Add an untagged request (flush machinery) and dispatch it soon. */
  addInternal(rq: request): void {
    this.stats.requests++;
    this.pending.push(rq);
    this.scheduleDispatch();
  }

  /** Wait until nothing is pending or in flight. */
  async drain(): Promise<void> {
    await wait_event(this.idleWq, () => this.inFlight === 0 && this.pending.length === 0);
  }
}

/* ---- the block softirq ---- */

let softirq = -1;
const softirqQueues = new Set<request_queue>();
function raiseBlockSoftirq(q: request_queue): void {
  if (softirq < 0) { q.run(); return; }
  const first = softirqQueues.size === 0;
  softirqQueues.add(q);
  if (first) trigger_irq(softirq);
}
initcall(INIT_CORE, 'blk_softirq', () => {
  softirqQueues.clear();
  softirq = alloc_irq_number();
  request_irq(softirq, () => {
    const qs = [...softirqQueues];
    softirqQueues.clear();
    for (const q of qs) q.run();
  });
});

/* ---- bios ---- */

/** bio_endio: record the status (the first error wins) and call bi_end_io. */
export function bio_endio(bio: bio, status: number): void {
  if (status !== BLK_STS_OK && bio.bi_status === BLK_STS_OK) bio.bi_status = status;
  const fn = bio.bi_end_io;
  if (fn) fn(bio);
}

/** What the queue needs to know about a bio's device, after remapping. */
export interface QueueTarget {
  queue: request_queue;
}

function sectorsOf(bio: bio): number { return Math.floor(bio.bi_size / SECTOR_SIZE); }

/**
 * Split a bio that exceeds the queue limits into children covering it in order; the parent
 * completes when the last child does (bio_split + bio_chain). Splits fall on bio_vec
 * boundaries where the byte count is a whole number of sectors.
 */
function splitToLimits(q: request_queue, parent: bio): bio[] {
  const vecs = parent.bi_io_vec;
  if (vecs.length <= q.max_segments && sectorsOf(parent) <= q.max_sectors) return [parent];
  const children: bio[] = [];
  let cur: bio | null = null;
  let sector = parent.bi_sector;
  for (const v of vecs) {
    if (cur && cur.bi_size % 512 === 0 &&
      (cur.bi_io_vec.length + 1 > q.max_segments || Math.floor((cur.bi_size + v.len) / SECTOR_SIZE) > q.max_sectors)) {
      sector += sectorsOf(cur);
      cur = null;
    }
    if (!cur) {
      cur = new bio(parent.bi_bdev);
      cur.bi_opf = parent.bi_opf;
      cur.bi_sector = sector;
      children.push(cur);
    }
    cur.addPage(v.page, v.len, v.offset);
  }
  /* PREFLUSH applies before the first part, FUA after the last: keep them there only */
  for (let i = 0; i < children.length; i++) {
    if (i > 0) children[i]!.bi_opf &= ~REQ_PREFLUSH;
    if (i < children.length - 1) children[i]!.bi_opf &= ~REQ_FUA;
  }
  let left = children.length;
  for (const c of children) {
    c.bi_end_io = (child) => {
      if (child.bi_status !== BLK_STS_OK && parent.bi_status === BLK_STS_OK) parent.bi_status = child.bi_status;
      if (--left === 0) bio_endio(parent, parent.bi_status);
    };
  }
  q.stats.splits += children.length - 1;
  return children;
}

/** Try to put a bio into a request that has not been dispatched (blk_attempt_plug_merge). */
function attemptMerge(q: request_queue, bio: bio): boolean {
  const op = bio.op;
  const nr = sectorsOf(bio);
  const segs = bio.bi_io_vec.length;
  for (let i = q.pending.length - 1; i >= 0; i--) {
    const rq = q.pending[i]!;
    if (!rq.mergeable || rq.op !== op) continue;
    if (rq.nr_sectors + nr > q.max_sectors || rq.nr_phys_segments + segs > q.max_segments) continue;
    if (rq.sector + rq.nr_sectors === bio.bi_sector) {
      rq.bios.push(bio);
      rq.nr_sectors += nr;
      rq.nr_phys_segments += segs;
      rq.flags |= bio.bi_opf & ~REQ_OP_MASK;
      q.stats.backMerges++;
      return true;
    }
    if (bio.bi_sector + nr === rq.sector) {
      rq.bios.unshift(bio);
      rq.sector = bio.bi_sector;
      rq.nr_sectors += nr;
      rq.nr_phys_segments += segs;
      rq.flags |= bio.bi_opf & ~REQ_OP_MASK;
      q.stats.frontMerges++;
      return true;
    }
  }
  return false;
}

/** Queue one bio that fits the limits and needs no flush sequencing. May sleep for a tag. */
async function queueBio(q: request_queue, bio: bio, mergeable = true): Promise<void> {
  for (;;) {
    if (q.dying) { bio_endio(bio, BLK_STS_IOERR); return; }
    if (mergeable && attemptMerge(q, bio)) return;
    if (q.tags < q.depth) break;
    /* queue full: the submitter sleeps until a request completes (blk_mq_get_tag) */
    await wait_event(q.tagWq, () => q.tags < q.depth || q.dying, true);
  }
  q.tags++;
  q.stats.requests++;
  const rq = new request(bio.op, bio.bi_opf & ~REQ_OP_MASK, bio.bi_sector, sectorsOf(bio), true);
  rq.end = (status) => { for (const b of rq.bios) bio_endio(b, status); };
  if (!mergeable) rq.mergeable = false;
  rq.bios.push(bio);
  rq.nr_phys_segments = bio.bi_io_vec.length;
  q.pending.push(rq);
  q.scheduleDispatch();
}

/** A FLUSH request; joins one that is still waiting for dispatch when there is one. */
function issueFlush(q: request_queue, then: (status: number) => void): void {
  for (const rq of q.pending) {
    if (rq.op === REQ_OP_FLUSH && rq.mergeable === false && (rq as FlushRequest).waiters) {
      (rq as FlushRequest).waiters.push(then);
      q.stats.sharedFlushes++;
      return;
    }
  }
  const rq = new request(REQ_OP_FLUSH, 0, 0, 0, false) as FlushRequest;
  rq.waiters = [then];
  rq.end = (status) => { for (const w of rq.waiters.splice(0)) w(status); };
  q.stats.flushes++;
  q.addInternal(rq);
}
interface FlushRequest extends request { waiters: Array<(status: number) => void> }

/**
 * Submit a bio whose sector is already absolute on the disk and whose bounds were checked
 * (blk_mq_submit_bio). Returns once the bio is queued; completion comes through bi_end_io.
 */
export async function blk_mq_submit_bio(q: request_queue, bio: bio): Promise<void> {
  q.stats.bios++;
  const op = bio.op;
  const flags = bio.bi_opf;
  if (q.dying) { bio_endio(bio, BLK_STS_IOERR); return; }
  /* an empty flush: REQ_OP_FLUSH, or a write that is nothing but PREFLUSH */
  if (op === REQ_OP_FLUSH || (op === REQ_OP_WRITE && bio.bi_size === 0 && (flags & REQ_PREFLUSH))) {
    if (!q.driver.flush) { bio_endio(bio, BLK_STS_OK); return; }
    issueFlush(q, (status) => bio_endio(bio, status));
    return;
  }
  if (op === REQ_OP_WRITE && (flags & (REQ_PREFLUSH | REQ_FUA))) {
    if (!q.driver.flush) {
      /* no volatile cache: completion already means durable */
      bio.bi_opf &= ~(REQ_PREFLUSH | REQ_FUA);
    } else {
      for (const part of splitToLimits(q, bio)) await flushSequence(q, part);
      return;
    }
  }
  for (const part of splitToLimits(q, bio)) await queueBio(q, part, true);
}

/**
 * blk_insert_flush: PREFLUSH → FLUSH, then the data write, then (FUA) FLUSH. The steps run
 * from completions (IRQ context), so the data write is an untagged request.
 */
async function flushSequence(q: request_queue, bio: bio): Promise<void> {
  const pre = (bio.bi_opf & REQ_PREFLUSH) !== 0;
  const post = (bio.bi_opf & REQ_FUA) !== 0;
  const postflush = () => {
    if (!post) { bio_endio(bio, BLK_STS_OK); return; }
    issueFlush(q, (s) => bio_endio(bio, s));
  };
  const data = () => {
    const rq = new request(REQ_OP_WRITE, bio.bi_opf & ~(REQ_OP_MASK | REQ_PREFLUSH | REQ_FUA), bio.bi_sector, sectorsOf(bio), false);
    rq.bios.push(bio);
    rq.nr_phys_segments = bio.bi_io_vec.length;
    rq.end = (s) => { if (s !== BLK_STS_OK) bio_endio(bio, s); else postflush(); };
    q.addInternal(rq);
  };
  if (pre) issueFlush(q, (s) => { if (s !== BLK_STS_OK) bio_endio(bio, s); else data(); });
  else data();
}

/** A request's segments, flattened, as a driver maps them (blk_rq_map_sg without merging). */
export function rqSegments(rq: request): { page: import('../mm/page_alloc.js').page; offset: number; len: number }[] {
  const out = [];
  for (const b of rq.bios) for (const v of b.bi_io_vec) out.push(v);
  return out;
}

export { REQ_OP_READ, REQ_OP_WRITE };
