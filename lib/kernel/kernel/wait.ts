/*
 * Wait queues and the sleeping primitives built on them (Linux's kernel/sched/wait.c,
 * kernel/locking/{mutex,rwsem,semaphore}.c, kernel/sched/completion.c).
 *
 * With one CPU and no preemption, "check the condition, then sleep" cannot lose a wake-up:
 * nothing else runs between the check and the sleep. So these are simple, but they are the
 * only places (with schedule() itself) where a kernel thread gives up the CPU.
 */
import { current, schedule } from '../arch/cpu.js';
import { wake_up_process, type task_struct } from '../arch/threads.js';
import { in_irq } from '../arch/irq.js';
import { add_timer, del_timer, type timer_list } from './timer.js';

interface WaitEntry { task: task_struct; exclusive: boolean }

export class wait_queue_head {
  /** The waiters; null until the first (every inode and file has queues that never get one). */
  private entries: WaitEntry[] | null = null;
  get active(): boolean { return this.entries !== null && this.entries.length > 0; }
  get length(): number { return this.entries?.length ?? 0; }
  add(e: WaitEntry): void { (this.entries ??= []).push(e); }
  remove(e: WaitEntry): void {
    const i = this.entries?.indexOf(e) ?? -1;
    if (i >= 0) this.entries!.splice(i, 1);
  }
  /** Wake every non-exclusive waiter and up to `nrExclusive` exclusive ones. */
  wakeUp(nrExclusive = 1): void {
    if (!this.entries?.length) return;
    let excl = nrExclusive;
    for (const e of [...this.entries]) {
      if (e.exclusive) {
        if (excl <= 0) continue;
        if (wake_up_process(e.task)) excl--;
      } else wake_up_process(e.task);
    }
  }
  wakeUpAll(): void { this.wakeUp(Number.MAX_SAFE_INTEGER); }
}

/**
 * Sleep once on `wq` (prepare_to_wait + schedule + finish_wait). `on` and `label` say what
 * the task waits for (a lock, or the queue itself) for show_state_filter and khungtaskd;
 * `idle` is TASK_IDLE: a thread waiting for work, which the hung task check skips.
 */
export async function sleepOn(wq: wait_queue_head, exclusive = false, on: object = wq, label = 'wait_event', idle = false): Promise<void> {
  const task = current();
  const e: WaitEntry = { task, exclusive };
  wq.add(e);
  task.state = 'sleeping';
  task.blocked_on = on;
  task.blocked_label = label;
  task.sleep_state = idle ? 'I' : 'D';
  try { await schedule(); } finally { wq.remove(e); }
}

/** wait_event: sleep until cond() is true. */
export async function wait_event(wq: wait_queue_head, cond: () => boolean, exclusive = false): Promise<void> {
  while (!cond()) await sleepOn(wq, exclusive);
}

/** wait_event_idle: wait_event in TASK_IDLE (a worker waiting for work; not a hung task). */
export async function wait_event_idle(wq: wait_queue_head, cond: () => boolean, exclusive = false): Promise<void> {
  while (!cond()) await sleepOn(wq, exclusive, wq, 'wait_event_idle', true);
}

/**
 * wait_event_timeout: sleep until cond() or `timeoutNs` passed. Resolves true if the
 * condition became true, false on timeout.
 */
export async function wait_event_timeout(wq: wait_queue_head, cond: () => boolean, timeoutNs: number): Promise<boolean> {
  if (cond()) return true;
  const task = current();
  let expired = false;
  const timer: timer_list = add_timer(timeoutNs, () => { expired = true; wake_up_process(task); });
  try {
    while (!cond()) {
      if (expired) return false;
      await sleepOn(wq);
    }
    return true;
  } finally { del_timer(timer); }
}

/** Sleep for `ns` nanoseconds (hrtimer_nanosleep: TASK_INTERRUPTIBLE, so never "hung"). */
export async function sleepNs(ns: number): Promise<void> {
  const task = current();
  let expired = false;
  const timer = add_timer(ns, () => { expired = true; wake_up_process(task); });
  try {
    while (!expired) {
      task.state = 'sleeping';
      task.blocked_on = timer;
      task.blocked_label = 'hrtimer_nanosleep';
      task.sleep_state = 'S';
      await schedule();
    }
  } finally { del_timer(timer); }
}

/** Give the CPU to other runnable threads (cond_resched / yield). */
export function yieldCpu(): Promise<void> { return schedule(); }

/** struct completion. */
export class completion {
  done = 0;
  private wq = new wait_queue_head();
  complete(): void { this.done++; this.wq.wakeUp(1); }
  completeAll(): void { this.done = Number.MAX_SAFE_INTEGER / 2; this.wq.wakeUpAll(); }
  async wait(): Promise<void> {
    while (this.done <= 0) await sleepOn(this.wq, true, this, 'completion');
    this.done--;
  }
  reinit(): void { this.done = 0; }
}

/** struct mutex: sleeping lock with an owner. */
export class mutex {
  owner: task_struct | null = null;
  /** The lock's name in hang reports (lockdep's class name); optional. */
  name: string;
  constructor(name = '') { this.name = name; }
  private wq = new wait_queue_head();
  get locked(): boolean { return this.owner !== null; }
  async lock(): Promise<void> {
    if (in_irq()) throw new Error('mutex_lock in IRQ context');
    const me = current();
    if (this.owner === me) throw new Error(`recursive mutex_lock by ${me.comm}`);
    while (this.owner !== null) await sleepOn(this.wq, true, this, 'mutex');
    this.owner = me;
  }
  tryLock(): boolean {
    if (this.owner !== null) return false;
    this.owner = current();
    return true;
  }
  unlock(): void {
    if (this.owner === null) throw new Error('mutex_unlock of unlocked mutex');
    this.owner = null;
    this.wq.wakeUp(1);
  }
  /** Run fn with the mutex held. */
  async with<T>(fn: () => Promise<T> | T): Promise<T> {
    await this.lock();
    try { return await fn(); } finally { this.unlock(); }
  }
}

/** struct rw_semaphore: many readers or one writer; writers are not starved. */
export class rw_semaphore {
  private readers = 0;
  writer: task_struct | null = null;
  /** The lock's name in hang reports; optional. */
  name: string;
  constructor(name = '') { this.name = name; }
  private writersWaiting = 0;
  private wq = new wait_queue_head();
  async downRead(): Promise<void> {
    while (this.writer !== null || this.writersWaiting > 0) await sleepOn(this.wq, false, this, 'rwsem_read');
    this.readers++;
  }
  /** down_read_trylock: take it for reading if that needs no wait. */
  tryDownRead(): boolean {
    if (this.writer !== null || this.writersWaiting > 0) return false;
    this.readers++;
    return true;
  }
  upRead(): void {
    if (--this.readers === 0) this.wq.wakeUpAll();
  }
  async downWrite(): Promise<void> {
    this.writersWaiting++;
    try {
      while (this.writer !== null || this.readers > 0) await sleepOn(this.wq, false, this, 'rwsem_write');
    } finally { this.writersWaiting--; }
    this.writer = current();
  }
  upWrite(): void { this.writer = null; this.wq.wakeUpAll(); }
  get isWriteLocked(): boolean { return this.writer !== null; }
  get readerCount(): number { return this.readers; }
}

/** struct semaphore: counting semaphore. */
export class semaphore {
  private wq = new wait_queue_head();
  constructor(private count: number) {}
  async down(): Promise<void> {
    while (this.count <= 0) await sleepOn(this.wq, true, this, 'semaphore');
    this.count--;
  }
  tryDown(): boolean { if (this.count <= 0) return false; this.count--; return true; }
  up(): void { this.count++; this.wq.wakeUp(1); }
  get value(): number { return this.count; }
}
