/*
 * Boot and halt (LKL's arch/lkl/kernel/setup.c): bring up the CPU token, time, memory,
 * run the init calls of every subsystem in the init thread, start the syscall threads;
 * and on halt, undo all of it so that no kernel thread, host timer or host handle is left
 * and the host process can exit by itself.
 */
import { pr_err, pr_info } from '../kernel/printk.js';
import type { HostOps } from '../host-ops.js';
import { cpu_init, cpuHalt, current } from './cpu.js';
import { runAsInit, kthread_run, allTasks } from './threads.js';
import { time_init, timeHalt } from '../kernel/timer.js';
import { mem_init } from '../mm/page_alloc.js';
import { syscallInit, syscallHalt } from './syscalls.js';
import { destroyAllWorkqueues } from '../kernel/workqueue.js';
import { wait_queue_head, wait_event } from '../kernel/wait.js';

export interface BootParams {
  memMiB: number;
  cmdline: string;
  syscallThreads: number;
}

type Initcall = { level: number; name: string; fn: (p: BootParams) => Promise<void> | void };
type Exitcall = { level: number; name: string; fn: () => Promise<void> | void };
const initcalls: Initcall[] = [];
const exitcalls: Exitcall[] = [];

/** Init levels, lowest first (core < fs < device < late). */
export const INIT_CORE = 1, INIT_FS = 5, INIT_DEVICE = 6, INIT_LATE = 7;

/** Register boot work (core_initcall / fs_initcall / device_initcall). */
export function initcall(level: number, name: string, fn: Initcall['fn']): void {
  initcalls.push({ level, name, fn });
}
/** Register halt work; run in reverse level order (devices go last... before memory). */
export function exitcall(level: number, name: string, fn: Exitcall['fn']): void {
  exitcalls.push({ level, name, fn });
}

let bootParams: BootParams | null = null;
export function bootParamsGet(): BootParams {
  if (!bootParams) throw new Error('kernel not booted');
  return bootParams;
}
/** Parse "key=value key2" kernel command line into a map. */
export function cmdlineParam(name: string): string | undefined {
  for (const w of (bootParams?.cmdline ?? '').split(/\s+/)) {
    if (!w) continue;
    const i = w.indexOf('=');
    if ((i < 0 ? w : w.slice(0, i)) === name) return i < 0 ? '' : w.slice(i + 1);
  }
  return undefined;
}

export async function start_kernel(h: HostOps, p: BootParams): Promise<void> {
  bootParams = p;
  cpu_init(h);
  time_init();
  mem_init(p.memMiB);
  await runAsInit('init', async () => {
    const sorted = [...initcalls].sort((a, b) => a.level - b.level);
    for (const c of sorted) await c.fn(p);
    syscallInit(p.syscallThreads);
  });
  pr_info(`lkl-ts: booted with ${p.memMiB} MiB, ${p.syscallThreads} syscall threads`);
}

/**
 * Halt, from host code: run exit calls (which sync and unmount), stop syscall threads and
 * workqueues, wait for every kernel thread to end, release timers, stop the CPU.
 */
export async function haltKernel(): Promise<void> {
  await runAsInit('halt', async () => {
    await syscallHalt();
    const sorted = [...exitcalls].sort((a, b) => b.level - a.level);
    for (const c of sorted) {
      try { await c.fn(); } catch (e) { pr_err(`halt: ${c.name} failed: ${(e as Error)?.message ?? e}`); }
    }
    await destroyAllWorkqueues();
    // Every other kernel thread was asked to stop; wait until they are gone.
    const me = current();
    const wq = new wait_queue_head();
    const others = () => allTasks().filter((t) => t !== me);
    for (const t of others()) t.exitWaiters.push(() => wq.wakeUpAll());
    await wait_event(wq, () => others().length === 0);
  });
  timeHalt();
  cpuHalt();
  bootParams = null;
}

export { kthread_run as kthreadRun };
