/*
 * The CPU token: LKL's arch/lkl/kernel/cpu.c and the core of the scheduler.
 *
 * lkl-ts has exactly one CPU and no preemption. Kernel threads are async functions; at most
 * one of them holds the CPU token (`current`) at a time and it gives the token up only by
 * sleeping (schedule()). So kernel code between two sleeps runs atomically with respect to
 * every other kernel thread, which is what lets kernel code be written without locks for
 * short critical sections, exactly as on a uniprocessor non-preemptible Linux.
 *
 * How it maps onto JavaScript: a sleeping thread awaits a promise whose resolver is stored
 * in its task struct. Handing the token over means: run pending IRQs, pick the next runnable
 * task, make it `current`, and resolve its promise. Nothing else ever resolves those
 * promises, so no kernel continuation can run while another thread holds the token, even
 * though host code (FUSE callbacks, I/O completions) interleaves freely between them.
 * Host code never touches kernel state: it only raises IRQs, which are queued and run by
 * whoever holds the token at its next hand-over, or by the idle thread when nobody does.
 *
 * May touch: host-ops only. Everything above (irq.ts, the sync primitives) builds on this.
 */
import { pr_err, pr_warn } from '../kernel/printk.js';
import type { HostOps, HostSemaphore } from '../host-ops.js';

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
  constructor(pid: number, comm: string) { this.pid = pid; this.comm = comm; }
}

interface IrqEntry { irq: number; data: unknown }
export type IrqHandler = (irq: number, data: unknown) => void;

/** Everything the CPU core keeps; reset at each boot (one kernel per process at a time). */
class CpuState {
  host!: HostOps;
  current: task_struct | null = null;
  runQueue: task_struct[] = [];
  pendingIrqs: IrqEntry[] = [];
  irqHandlers = new Map<number, IrqHandler>();
  idleSem!: HostSemaphore;
  /** True while hand-over runs IRQ handlers (they must not sleep). */
  inIrq = false;
  halted = false;
  nextPid = 1;
  tasks = new Set<task_struct>();
  irqCount = 0;
  /** The next device IRQ number (0-15 are the machine's fixed ones, arch/irqs.ts). */
  nextIrq = 16;
}
let cpu = new CpuState();

export function cpu_init(host: HostOps): void {
  cpu = new CpuState();
  cpu.host = host;
  cpu.idleSem = host.semAlloc(0);
  cpu_idle_loop();
}

export function host(): HostOps { return cpu.host; }
export function current(): task_struct {
  const t = cpu.current;
  if (!t) throw new Error('no current task: kernel code ran without the CPU token');
  return t;
}
export function currentOrNull(): task_struct | null { return cpu.current; }
export function in_irq(): boolean { return cpu.inIrq; }
export function allTasks(): task_struct[] { return [...cpu.tasks]; }
export function irqsServed(): number { return cpu.irqCount; }

/** The idle thread: waits on a host semaphore while the CPU is free, then takes it. */
async function cpu_idle_loop(): Promise<void> {
  const me = cpu;
  for (;;) {
    await me.idleSem.down();
    if (me !== cpu || me.halted) return;
    if (me.current === null) handOver();
  }
}

export function request_irq(irq: number, handler: IrqHandler): void {
  if (cpu.irqHandlers.has(irq)) throw new Error(`irq ${irq} already requested`);
  cpu.irqHandlers.set(irq, handler);
}
export function free_irq(irq: number): void { cpu.irqHandlers.delete(irq); }

/** A fresh IRQ number for a device (numbered anew each boot, from 16). */
export function alloc_irq_number(): number { return cpu.nextIrq++; }

/**
 * Raise an IRQ carrying data. Callable from host code at any time, and from kernel code.
 * Never runs the handler synchronously: it runs at the next hand-over, in raise order.
 */
export function trigger_irq(irq: number, data?: unknown): void {
  const c = cpu;
  if (c.halted) return;
  c.pendingIrqs.push({ irq, data });
  if (c.current === null) c.idleSem.up();
}

function runIrqs(): void {
  const c = cpu;
  if (c.pendingIrqs.length === 0) return;
  c.inIrq = true;
  try {
    // Handlers may raise more IRQs; run them too, still in order.
    while (c.pendingIrqs.length) {
      const e = c.pendingIrqs.shift()!;
      const h = c.irqHandlers.get(e.irq);
      c.irqCount++;
      if (h) {
        try { h(e.irq, e.data); } catch (err) {
          pr_err(`BUG: irq ${e.irq} handler threw: ${(err as Error)?.stack ?? err}`);
        }
      } else pr_warn(`irq ${e.irq}: no handler`);
    }
  } finally { c.inIrq = false; }
}

/**
 * Give the token away: run IRQs (which may wake tasks), then switch to the first runnable
 * task, or leave the CPU idle. Called with the token held (or by idle with nobody holding it).
 */
function handOver(): void {
  const c = cpu;
  c.current = null;
  for (;;) {
    runIrqs();
    const next = c.runQueue.shift();
    if (!next) return; // idle: the next IRQ wakes the idle thread
    if (next.state !== 'runnable') continue;
    c.current = next;
    next.state = 'running';
    const r = next.resume;
    next.resume = null;
    if (r) r();
    else c.host.panic(`task ${next.pid} (${next.comm}) runnable with no resume point`);
    return;
  }
}

/**
 * Sleep: the caller must already have set its state to 'sleeping' (after queueing itself
 * on whatever will wake it) or leave it 'running' to merely yield. Resolves when the task
 * holds the token again.
 */
export function schedule(): Promise<void> {
  const me = current();
  if (cpu.inIrq) throw new Error('schedule() in IRQ context');
  if (me.state === 'running') { me.state = 'runnable'; cpu.runQueue.push(me); }
  return new Promise<void>((res) => { me.resume = res; handOver(); });
}

/** Make a sleeping task runnable. Safe from IRQ handlers and kernel code. */
export function wake_up_process(t: task_struct): boolean {
  if (t.state !== 'sleeping') return false;
  t.state = 'runnable';
  cpu.runQueue.push(t);
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
  const c = cpu;
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

/** Stop the CPU: no more IRQs are queued; the idle loop ends. */
export function cpuHalt(): void {
  const c = cpu;
  c.halted = true;
  c.pendingIrqs.length = 0;
  c.idleSem.up();
}
export function cpuHalted(): boolean { return cpu.halted; }
