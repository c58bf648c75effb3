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
 * Split as LKL splits arch/lkl/kernel: this file is the token, the run queue and the idle
 * thread; irq.ts queues and runs IRQs; threads.ts creates kernel threads.
 *
 * May touch: host-ops only. Everything above (irq.ts, threads.ts, the sync primitives)
 * builds on this.
 */
import type { HostOps, HostSemaphore } from '../host-ops.js';
import { run_irqs, type IrqEntry, type IrqHandler } from './irq.js';
import type { task_struct } from './threads.js';

/** Everything the CPU core keeps; reset at each boot (one kernel per process at a time). */
export class CpuState {
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
  /** The next device IRQ number (0-15 are the machine's fixed ones, irq.ts). */
  nextIrq = 16;
}
let cpu = new CpuState();
/** The CPU's state, for irq.ts and threads.ts (the same machine, split by concept). */
export function cpu_state(): CpuState { return cpu; }

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

/** The idle thread: waits on a host semaphore while the CPU is free, then takes it. */
async function cpu_idle_loop(): Promise<void> {
  const me = cpu;
  for (;;) {
    await me.idleSem.down();
    if (me !== cpu || me.halted) return;
    if (me.current === null) handOver();
  }
}





/**
 * Give the token away: run IRQs (which may wake tasks), then switch to the first runnable
 * task, or leave the CPU idle. Called with the token held (or by idle with nobody holding it).
 */
export function handOver(): void {
  const c = cpu;
  c.current = null;
  for (;;) {
    run_irqs();
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
  me.nvcsw++;
  return new Promise<void>((res) => { me.resume = res; handOver(); });
}





/** Stop the CPU: no more IRQs are queued; the idle loop ends. */
export function cpuHalt(): void {
  const c = cpu;
  c.halted = true;
  c.pendingIrqs.length = 0;
  c.idleSem.up();
}
export function cpuHalted(): boolean { return cpu.halted; }
