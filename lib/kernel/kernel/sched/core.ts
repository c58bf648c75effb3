/*
 * The task-state dump of kernel/sched/core.c: sched_show_task() prints one task (its
 * state letter, pid, what it sleeps on, the system call it serves) and show_state_filter()
 * prints every task, as sysrq-t does. With no stack unwinder, "what it sleeps on" stands for
 * the backtrace: the wait queue or lock (with its name and, for a mutex or a write-held
 * rwsem, its owner) recorded by the sleeping primitive in kernel/wait.ts.
 */
import { allTasks, type task_struct } from '../../arch/threads.js';
import { syscallName } from '../../arch/syscalls.js';
import { KERN_INFO, printk } from '../printk.js';
import { ktime_get_ns } from '../timer.js';

/** TASK_* as the letters of /proc/PID/stat and sysrq-t (fs/proc/array.c task_state_array). */
export function task_state_to_char(t: task_struct): string {
  switch (t.state) {
    case 'running': case 'runnable': case 'new': return 'R';
    case 'sleeping': return t.sleep_state;
    default: return 'X';
  }
}

/** Where the lock `on` is held, when it records an owner (mutex, rwsem held for write). */
function ownerOf(on: object): task_struct | null {
  const o = (on as { owner?: unknown; writer?: unknown });
  const t = (o.owner ?? o.writer) as task_struct | null | undefined;
  return t && typeof t === 'object' && 'pid' in t ? t : null;
}

/** One line per task: "task:<comm> state:<S> pid:<n> ..." with what it waits for. */
export function sched_show_task(t: task_struct, loglvl: string = KERN_INFO): void {
  const st = task_state_to_char(t);
  let line = `task:${t.comm.padEnd(15)} state:${st} pid:${t.pid}`;
  if (t.syscall_nr >= 0) line += ` syscall:${syscallName(t.syscall_nr) ?? t.syscall_nr}`;
  if (t.state === 'sleeping' && t.blocked_on) {
    const name = (t.blocked_on as { name?: unknown }).name;
    line += ` blocked on ${t.blocked_label}`;
    if (typeof name === 'string' && name) line += ` "${name}"`;
    const owner = ownerOf(t.blocked_on);
    if (owner) line += ` held by ${owner.comm}/${owner.pid}`;
    if (t.sleep_state === 'D' && t.last_switch_time > 0) {
      line += ` for ${((ktime_get_ns() - t.last_switch_time) / 1e9).toFixed(1)} s`;
    }
  }
  printk(loglvl + line);
}

/**
 * show_state_filter(state_filter): print every task whose state letter is in the filter
 * (Linux passes TASK_* bits; here the letters, '' for all), then a count line.
 */
export function show_state_filter(state_filter = '', loglvl: string = KERN_INFO): void {
  const tasks = allTasks();
  let shown = 0;
  printk(`${loglvl}Show State: ${tasks.length} tasks`);
  for (const t of tasks) {
    if (state_filter && !state_filter.includes(task_state_to_char(t))) continue;
    sched_show_task(t, loglvl);
    shown++;
  }
  if (state_filter) printk(`${loglvl}Show State: ${shown} tasks in state ${state_filter}`);
}
