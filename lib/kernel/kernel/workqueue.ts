/*
 * Workqueues (kernel/workqueue.c, much reduced): deferred work run by kernel worker
 * threads. IRQ handlers never sleep, so anything that must sleep after an IRQ (completing a
 * bio chain that needs more I/O, writeback, journal commit) is queued here.
 * Each workqueue has `maxActive` worker threads created lazily; a work item is queued at
 * most once until it starts running (as Linux's WORK_STRUCT_PENDING bit).
 */
import { kthreadRun, type Task } from '../arch/cpu.js';
import { WaitQueueHead, waitEvent } from './wait.js';
import { addTimer, delTimer, type KTimer } from './timer.js';

export class WorkStruct {
  pending = false;
  running = 0;
  constructor(public fn: () => Promise<void> | void) {}
}
export class DelayedWork extends WorkStruct {
  timer: KTimer | null = null;
}

const allQueues = new Set<WorkQueue>();

export class WorkQueue {
  private queue: WorkStruct[] = [];
  private wq = new WaitQueueHead();
  private idleWq = new WaitQueueHead();
  private workers: Task[] = [];
  private busy = 0;
  private stopping = false;
  constructor(public readonly name: string, private readonly maxActive = 1) { allQueues.add(this); }

  /** queue_work: returns false if it was already pending. Safe from IRQ context. */
  queueWork(w: WorkStruct): boolean {
    if (w.pending || this.stopping) return false;
    w.pending = true;
    this.queue.push(w);
    if (this.workers.length < this.maxActive && this.busy + this.queue.length > this.workers.length)
      this.spawn();
    this.wq.wakeUp(1);
    return true;
  }

  queueDelayedWork(w: DelayedWork, delayNs: number): boolean {
    if (w.pending || w.timer) return false;
    if (delayNs <= 0) return this.queueWork(w);
    w.timer = addTimer(delayNs, () => { w.timer = null; this.queueWork(w); });
    return true;
  }

  cancelDelayedWork(w: DelayedWork): void {
    if (w.timer) { delTimer(w.timer); w.timer = null; }
    const i = this.queue.indexOf(w);
    if (i >= 0) { this.queue.splice(i, 1); w.pending = false; }
  }

  /** flush_workqueue: wait until everything queued so far has run. */
  async flush(): Promise<void> {
    await waitEvent(this.idleWq, () => this.queue.length === 0 && this.busy === 0);
  }

  /** destroy_workqueue: drain, stop the workers, wait for them to exit. */
  async destroy(): Promise<void> {
    await this.flush();
    this.stopping = true;
    const ws = this.workers.splice(0);
    for (const t of ws) t.shouldStop = true;
    this.wq.wakeUpAll();
    const exitWq = new WaitQueueHead();
    let left = ws.length;
    for (const t of ws) {
      if (t.state === 'dead') left--;
      else t.exitWaiters.push(() => { left--; exitWq.wakeUpAll(); });
    }
    await waitEvent(exitWq, () => left === 0);
    allQueues.delete(this);
  }

  private spawn(): void {
    const t = kthreadRun(`kworker/${this.name}:${this.workers.length}`, async () => {
      for (;;) {
        await waitEvent(this.wq, () => this.queue.length > 0 || t.shouldStop, true);
        if (this.queue.length === 0) return; // asked to stop and nothing left
        const w = this.queue.shift()!;
        w.pending = false;
        w.running++;
        this.busy++;
        try { await w.fn(); } finally {
          w.running--;
          this.busy--;
          if (this.queue.length === 0 && this.busy === 0) this.idleWq.wakeUpAll();
        }
      }
    });
    this.workers.push(t);
  }
}

/** Destroy every workqueue still alive (halt). */
export async function destroyAllWorkqueues(): Promise<void> {
  for (const q of [...allQueues]) await q.destroy();
}
