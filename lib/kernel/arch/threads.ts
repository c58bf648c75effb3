/*
 * Kernel threads (LKL's arch/lkl/kernel/threads.c): the task struct, creating a thread
 * (its body is a host task that starts the first time it gets the CPU token), waking a
 * sleeping one, and running init at boot.
 */
import { pr_err } from '../kernel/printk.js';
import { cpu_state, current, handOver } from './cpu.js';

export type TaskState = 'new' | 'running' | 'runnable' | 'sleeping' | 'dead';

/** Per-task pieces owned by other subsystems (creds, fs context, files) hang off `ctx`. */
export class task_struct {
  readonly pid: number;
  comm: string;
  state: TaskState = 'new';
  /** Resolver of the promise this task sleeps on; set only while it is off the CPU. */
  resume: (() => void) | null = null;
  /** kthread_should_stop() flag. */
  shouldStop = false;
  /** Waiters for this task's exit. */
  exitWaiters: Array<() => void> = [];
  /** Set by timers and signals-lite: why the last sleep ended early. */
  wakeReason = 0;
  /** Subsystem context: creds, fs_struct, files; typed where used. */
  ctx: Record<string, unknown> = Object.create(null);
  /*
   * What show_state_filter() and the hung task detector read (kernel/sched/core.c,
   * kernel/hung_task.c). Only field stores on the sleep path, no allocation.
   */
  /** The wait queue or lock the task sleeps on, while it sleeps (else stale, unread). */
  blocked_on: object | null = null;
  /** What kind of sleep: 'mutex', 'rwsem_read', 'wait_event', ... (a literal). */
  blocked_label = '';
  /**
   * TASK_UNINTERRUPTIBLE ('D'), TASK_INTERRUPTIBLE ('S': nanosleep) or TASK_IDLE ('I': a
   * thread waiting for work). Only 'D' sleeps can be reported as hung.
   */
  sleep_state: 'D' | 'S' | 'I' = 'D';
  /** Voluntary context switches (nvcsw); the hung task check compares it across checks. */
  nvcsw = 0;
  last_switch_count = 0;
  /** ktime (ns) at which khungtaskd last saw nvcsw change. */
  last_switch_time = 0;
  /** The system call this task is serving (its number), -1 when none (syscall threads). */
  syscall_nr = -1;
  constructor(pid: number, comm: string) { this.pid = pid; this.comm = comm; }
}

/** Make a sleeping task runnable. Safe from IRQ handlers and kernel code. */
export function wake_up_process(t: task_struct): boolean {
  if (t.state !== 'sleeping') return false;
  t.state = 'runnable';
  cpu_state().runQueue.push(t);
  // Called from kernel code with the token held, or from IRQ handlers in hand-over: the
  // task will be picked at that hand-over or the next one. Nothing else to do.
  return true;
}

/** Mark the current task as about to sleep (set_current_state(TASK_UNINTERRUPTIBLE)). */
export function setCurrentSleeping(): void { current().state = 'sleeping'; }

/**
 * Create a kernel thread (kthread_run). It becomes runnable at once; its body starts as a
 * host task the first time it gets the token. Resolves its exit waiters when the body ends.
 */
export function kthread_run(name: string, body: () => Promise<void>, ctx?: Record<string, unknown>): task_struct {
  const c = cpu_state();
  const t = new task_struct(c.nextPid++, name);
  if (ctx) Object.assign(t.ctx, ctx);
  else if (c.current) Object.assign(t.ctx, c.current.ctx);
  c.tasks.add(t);
  t.resume = () => {
    c.host.threadCreate(() => {
      void (async () => {
        try { await body(); } catch (err) {
          pr_err(`BUG: kernel thread ${t.comm} died: ${(err as Error)?.stack ?? err}`);
        }
        // The body ends holding the token: give it away for good.
        t.state = 'dead';
        c.tasks.delete(t);
        for (const w of t.exitWaiters.splice(0)) w();
        if (c.current === t) handOver();
      })();
    });
  };
  t.state = 'runnable';
  c.runQueue.push(t);
  if (c.current === null) c.idleSem.up();
  return t;
}

/**
 * Boot: run `fn` as the first kernel thread (init). Called from host code; the promise is
 * a host promise that resolves with fn's result once init returns.
 */
export function runAsInit<T>(name: string, fn: () => Promise<T>, ctx?: Record<string, unknown>): Promise<T> {
  return new Promise<T>((res, rej) => {
    kthread_run(name, async () => { try { res(await fn()); } catch (e) { rej(e); } }, ctx);
  });
}

export function allTasks(): task_struct[] { return [...cpu_state().tasks]; }
