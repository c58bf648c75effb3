/*
 * Workqueues (kernel/workqueue.c, much reduced): deferred work run by kernel worker
 * threads. IRQ handlers never sleep, so anything that must sleep after an IRQ (completing a
 * bio chain that needs more I/O, writeback, journal commit) is queued here.
 * Each workqueue has `maxActive` worker threads created lazily; a work item is queued at
 * most once until it starts running (as Linux's WORK_STRUCT_PENDING bit).
 */
import { kthread_run, type task_struct } from '../arch/threads.js';
import { wait_queue_head, wait_event, wait_event_idle } from './wait.js';
import { add_timer, del_timer, type timer_list } from './timer.js';

export class work_struct {
  pending = false;
  running = 0;
  constructor(public fn: () => Promise<void> | void) {}
}
export class delayed_work extends work_struct {
  timer: timer_list | null = null;
}

const allQueues = new Set<workqueue_struct>();

export class workqueue_struct {
  private queue: work_struct[] = [];
  private wq = new wait_queue_head();
  private idleWq = new wait_queue_head();
  private workers: task_struct[] = [];
  private busy = 0;
  private stopping = false;
  constructor(public readonly name: string, private readonly maxActive = 1) { allQueues.add(this); }

  /** queue_work: returns false if it was already pending. Safe from IRQ context. */
  queueWork(w: work_struct): boolean {
    if (w.pending || this.stopping) return false;
    w.pending = true;
    this.queue.push(w);
    if (this.workers.length < this.maxActive && this.busy + this.queue.length > this.workers.length)
      this.spawn();
    this.wq.wakeUp(1);
    return true;
  }

  queueDelayedWork(w: delayed_work, delayNs: number): boolean {
    if (w.pending || w.timer) return false;
    if (delayNs <= 0) return this.queueWork(w);
    w.timer = add_timer(delayNs, () => { w.timer = null; this.queueWork(w); });
    return true;
  }

  cancelDelayedWork(w: delayed_work): void {
    if (w.timer) { del_timer(w.timer); w.timer = null; }
    const i = this.queue.indexOf(w);
    if (i >= 0) { this.queue.splice(i, 1); w.pending = false; }
  }

  /** flush_workqueue: wait until everything queued so far has run. */
  async flush(): Promise<void> {
    await wait_event(this.idleWq, () => this.queue.length === 0 && this.busy === 0);
  }

  /** destroy_workqueue: drain, stop the workers, wait for them to exit. */
  async destroy(): Promise<void> {
    await this.flush();
    this.stopping = true;
    const ws = this.workers.splice(0);
    for (const t of ws) t.shouldStop = true;
    this.wq.wakeUpAll();
    const exitWq = new wait_queue_head();
    let left = ws.length;
    for (const t of ws) {
      if (t.state === 'dead') left--;
      else t.exitWaiters.push(() => { left--; exitWq.wakeUpAll(); });
    }
    await wait_event(exitWq, () => left === 0);
    allQueues.delete(this);
  }

  private spawn(): void {
    const t = kthread_run(`kworker/${this.name}:${this.workers.length}`, async () => {
      for (;;) {
        await wait_event_idle(this.wq, () => this.queue.length > 0 || t.shouldStop, true);
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
