/*
 * The hung task detector (kernel/hung_task.c): khungtaskd wakes every
 * hung_task_check_interval_secs (default: the timeout) and reports each task that has slept
 * in TASK_UNINTERRUPTIBLE ('D') without a single context switch for more than
 * hung_task_timeout_secs: "INFO: task <comm>:<pid> blocked for more than N seconds.", the
 * task itself (sched_show_task), then every task's state (show_state_filter), which stands
 * in for Linux's lock dump and backtraces. Threads waiting for work sleep in TASK_IDLE and are
 * never reported.
 *
 * Linux's default timeout is CONFIG_DEFAULT_HUNG_TASK_TIMEOUT (120 s); here the default is 0
 * (off), so that a kernel inside a test or a tool starts no timer. It is set at boot with
 * the command line's sysctl.kernel.hung_task_timeout_secs=N (Linux's sysctl.* boot
 * parameters); lklfuse sets it. The check itself costs nothing on the sleep path: the
 * sleeping primitives store what they wait on and schedule() counts switches (nvcsw).
 */
import { allTasks, kthread_run, type task_struct } from '../arch/threads.js';
import { current, schedule } from '../arch/cpu.js';
import { cmdlineParam, exitcall, initcall, INIT_LATE } from '../arch/setup.js';
import { wake_up_process } from '../arch/threads.js';
import { KERN_ERR, pr_err } from './printk.js';
import { sched_show_task, show_state_filter } from './sched/core.js';
import { add_timer, del_timer, ktime_get_ns } from './timer.js';

/** /proc/sys/kernel/hung_task_timeout_secs: 0 disables the check. */
export let sysctl_hung_task_timeout_secs = 0;
/** /proc/sys/kernel/hung_task_check_interval_secs: 0 means "the timeout". */
export let sysctl_hung_task_check_interval_secs = 0;
/** /proc/sys/kernel/hung_task_warnings: reports left (-1: unlimited). */
export let sysctl_hung_task_warnings = 10;
/** How many hung tasks have been detected since boot (hung_task_detect_count). */
export let sysctl_hung_task_detect_count = 0;

let khungtaskd: task_struct | null = null;

/** check_hung_task: report `t` if it has not switched for `timeout` seconds. True if reported. */
function check_hung_task(t: task_struct, timeout: number, now: number): boolean {
  if (t.nvcsw !== t.last_switch_count || t.last_switch_time === 0) {
    t.last_switch_count = t.nvcsw;
    t.last_switch_time = now;
    return false;
  }
  if (now - t.last_switch_time < timeout * 1e9) return false;
  sysctl_hung_task_detect_count++;
  if (sysctl_hung_task_warnings === 0) return false;
  if (sysctl_hung_task_warnings > 0) sysctl_hung_task_warnings--;
  pr_err(`INFO: task ${t.comm}:${t.pid} blocked for more than ${timeout} seconds.`);
  pr_err('"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.');
  sched_show_task(t, KERN_ERR);
  return true;
}

/** check_hung_uninterruptible_tasks: one pass over every task in 'D'. */
export function check_hung_uninterruptible_tasks(timeout: number): number {
  const now = ktime_get_ns();
  let reported = 0;
  for (const t of allTasks()) {
    if (t.state === 'sleeping' && t.sleep_state === 'D') {
      if (check_hung_task(t, timeout, now)) reported++;
    } else {
      // Running or idle: its clock restarts at its next uninterruptible sleep.
      t.last_switch_count = t.nvcsw;
      t.last_switch_time = now;
    }
  }
  if (reported) show_state_filter('', KERN_ERR);
  return reported;
}

/** khungtaskd's body: sleep in TASK_IDLE for the interval, check, again until stopped. */
async function watchdog(): Promise<void> {
  const me = current();
  while (!me.shouldStop) {
    const timeout = sysctl_hung_task_timeout_secs;
    const interval = sysctl_hung_task_check_interval_secs || timeout;
    const timer = add_timer(interval * 1e9, () => { wake_up_process(me); });
    me.state = 'sleeping';
    me.blocked_on = timer;
    me.blocked_label = 'schedule_timeout';
    me.sleep_state = 'I';
    try { await schedule(); } finally { del_timer(timer); }
    if (me.shouldStop) return;
    if (sysctl_hung_task_timeout_secs > 0) check_hung_uninterruptible_tasks(sysctl_hung_task_timeout_secs);
  }
}

function parseSecs(name: string): number | undefined {
  const v = cmdlineParam(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) { pr_err(`hung_task: ignoring ${name}=${v}`); return undefined; }
  return n;
}

initcall(INIT_LATE, 'hung_task_init', () => {
  sysctl_hung_task_timeout_secs = parseSecs('sysctl.kernel.hung_task_timeout_secs') ?? 0;
  sysctl_hung_task_check_interval_secs = parseSecs('sysctl.kernel.hung_task_check_interval_secs') ?? 0;
  sysctl_hung_task_warnings = 10;
  sysctl_hung_task_detect_count = 0;
  khungtaskd = sysctl_hung_task_timeout_secs > 0 ? kthread_run('khungtaskd', watchdog) : null;
});

exitcall(INIT_LATE, 'hung_task_exit', () => {
  const t = khungtaskd;
  khungtaskd = null;
  if (t) { t.shouldStop = true; wake_up_process(t); }
});
