/*
 * System-call entry (LKL's arch/lkl/kernel/syscalls.c, redesigned for one event loop).
 *
 * Host code calls syscall(nr, args): the request is raised as IRQ_SYSCALL carrying its data
 * and a host promise is returned. The IRQ handler only queues the request and wakes a
 * syscall thread. A pool of kernel threads takes requests in order and runs the handlers,
 * so a call that sleeps on I/O leaves the CPU to the others. Results: >= 0 or an object on
 * success, -errno on failure (handlers throw Errno). Any other exception is a kernel bug: it
 * is printed and the call returns -EIO rather than taking the process down.
 *
 * All syscall threads act for one process (LKL's single host process): its credentials,
 * fs context and file table live in `processCtx` and are installed into each syscall thread
 * before it runs a request. A request may carry filesystem credentials of its own (fsuid,
 * fsgid, group_info: a file server acting for its caller, as nfsd does); the thread then
 * runs that one call with the process's cred overridden by them (override_fscreds). It may
 * carry a umask too (the FUSE request's, whose file mode the host did not mask): the call
 * then runs with a view of the process's fs_struct whose umask is that one, as nfsd sets
 * current->fs->umask to its client's for a create.
 */
import { pr_err } from '../kernel/printk.js';
import { current } from './cpu.js';
import { kthread_run, type task_struct } from './threads.js';
import { request_irq, trigger_irq } from './irq.js';
import { IRQ_SYSCALL } from './irq.js';
import { wait_queue_head, wait_event, wait_event_idle } from '../kernel/wait.js';
import { Errno } from '../include/errno.js';
import { EIO, ENOSYS } from '../include/uapi.js';
import { override_fscreds, type FsCredOverride } from '../kernel/override_creds.js';
import type { cred } from '../include/fs.js';

export type SyscallHandler = (...args: any[]) => Promise<unknown> | unknown;

interface SyscallRequest { nr: number; args: unknown[]; resolve: (r: unknown) => void; fscred?: FsCredOverride; umask?: number }

const table = new Map<number, { name: string; fn: SyscallHandler }>();

/** Register the handler of system call `nr` (the asm-generic number). */
export function define_syscall(nr: number, name: string, fn: SyscallHandler): void {
  if (table.has(nr)) throw new Error(`syscall ${nr} (${name}) defined twice`);
  table.set(nr, { name, fn });
}
export function syscallName(nr: number): string | undefined { return table.get(nr)?.name; }

class SyscallState {
  queue: SyscallRequest[] = [];
  wq = new wait_queue_head();
  threads: task_struct[] = [];
  stopping = false;
  processCtx: Record<string, unknown> = Object.create(null);
  inFlight = 0;
  served = 0;
  idleWq = new wait_queue_head();
}
let st = new SyscallState();
/** Each boot's number (1, 2, ...); 0 while no kernel takes system calls. */
let generation = 0;
let lastGeneration = 0;
/** The running boot's generation, for callers that must not reach a later kernel. */
export function syscallGeneration(): number { return generation; }

/** The process context syscall threads act for (cred, fs, files; set by subsystems at boot). */
export function processContext(): Record<string, unknown> { return st.processCtx; }

export function syscallInit(nThreads: number): void {
  // The process context was filled by this boot's initcalls (cred, fs, files), which run
  // before the syscall threads start: carry it over to the new state.
  const ctx = st.processCtx;
  st = new SyscallState();
  st.processCtx = ctx;
  const me = st;
  generation = ++lastGeneration;
  request_irq(IRQ_SYSCALL, (_irq, data) => {
    const req = data as SyscallRequest;
    // Raised while halting, after the threads stopped taking requests: nothing will run it.
    if (me.stopping) { req.resolve(-ENOSYS); return; }
    me.queue.push(req);
    me.wq.wakeUp(1);
  });
  for (let i = 0; i < nThreads; i++) {
    const t: task_struct = kthread_run(`syscall/${i}`, async () => {
      for (;;) {
        await wait_event_idle(me.wq, () => me.queue.length > 0 || t.shouldStop, true);
        const req = me.queue.shift();
        if (!req) return;
        me.inFlight++;
        Object.assign(t.ctx, me.processCtx);
        if (req.fscred && me.processCtx.cred) t.ctx.cred = override_fscreds(me.processCtx.cred as cred, req.fscred);
        if (req.umask !== undefined && me.processCtx.fs) t.ctx.fs = fs_with_umask(me.processCtx.fs as object, req.umask);
        let result: unknown;
        t.syscall_nr = req.nr;
        try { result = await runHandler(req.nr, req.args); } finally {
          t.syscall_nr = -1;
          me.inFlight--;
          me.served++;
          if (me.inFlight === 0 && me.queue.length === 0) me.idleWq.wakeUpAll();
        }
        req.resolve(result);
        // More requests may be queued than threads woken: pass the baton.
        if (me.queue.length) me.wq.wakeUp(1);
      }
    });
    me.threads.push(t);
  }
}

/**
 * The process's fs_struct as one call sees it with its own umask: root, pwd and the rest
 * are the process's (read and written through), the umask is the call's (umask(2) in that
 * call changes only it).
 */
function fs_with_umask(fs: object, umask: number): object {
  let mask = umask & 0o777;
  return new Proxy(fs, {
    get: (target, key) => key === 'umask' ? mask : Reflect.get(target, key),
    set: (target, key, value) => {
      if (key === 'umask') mask = value as number;
      else Reflect.set(target, key, value);
      return true;
    },
  });
}

async function runHandler(nr: number, args: unknown[]): Promise<unknown> {
  const e = table.get(nr);
  if (!e) return -ENOSYS;
  try {
    const r = await e.fn(...args);
    return r === undefined ? 0 : r;
  } catch (err) {
    if (err instanceof Errno) return -err.errno;
    pr_err(`BUG: syscall ${e.name} (${nr}) threw: ${(err as Error)?.stack ?? err}`);
    return -EIO;
  }
}

/**
 * Host side: make system call `nr`. Never rejects; resolves with the result or -errno.
 * With no kernel running, or when `opts.gen` names another boot than the running one, it
 * resolves to -ENOSYS at once. `opts.fscred`: run this one call with these filesystem
 * credentials (see override_fscreds); `opts.umask`: and with this umask.
 */
export function syscall(nr: number, args: unknown[], opts: { gen?: number; fscred?: FsCredOverride; umask?: number } = {}): Promise<any> {
  const { gen, fscred, umask } = opts;
  if (generation === 0 || (gen !== undefined && gen !== generation)) return Promise.resolve(-ENOSYS);
  return new Promise((resolve) => trigger_irq(IRQ_SYSCALL, { nr, args, resolve, fscred, umask } satisfies SyscallRequest));
}

/** Stop the syscall threads once idle (from a kernel thread at halt). */
export async function syscallHalt(): Promise<void> {
  const me = st;
  await wait_event(me.idleWq, () => me.inFlight <= countSelf(me) && me.queue.length === 0);
  me.stopping = true;
  generation = 0;
  for (const t of me.threads) t.shouldStop = true;
  me.wq.wakeUpAll();
}
/** The halting syscall itself (reboot) is in flight while it waits for the others. */
function countSelf(me: SyscallState): number { return me.threads.includes(current()) ? 1 : 0; }
export function syscallStats(): { served: number; inFlight: number; queued: number } {
  return { served: st.served, inFlight: st.inFlight, queued: st.queue.length };
}
export function syscallThreads(): task_struct[] { return st.threads; }
