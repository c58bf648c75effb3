/*
 * Small system calls outside the filesystem: time, sleeping, ids, reboot
 * (kernel/time/*, kernel/sys.c, kernel/reboot.c).
 */
import { current } from '../arch/cpu.js';
import { kthread_run } from '../arch/threads.js';
import { define_syscall, processContext } from '../arch/syscalls.js';
import { initcall, INIT_CORE } from '../arch/setup.js';
import { sleepNs } from './wait.js';
import { ktime_get_ts64, ktime_get_real_ts64, setRealtime } from './timer.js';
import { capable, rootCred } from './cred.js';
import { CAP_SYS_BOOT, CAP_SYS_TIME } from '../include/fs.js';
import { err } from '../include/errno.js';
import {
  CLOCK_BOOTTIME, CLOCK_MONOTONIC, CLOCK_REALTIME, EINVAL, EPERM, LINUX_REBOOT_CMD_HALT,
  LINUX_REBOOT_CMD_POWER_OFF, LINUX_REBOOT_CMD_RESTART, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
  type timespec64,
} from '../include/uapi.js';
import * as NR from '../include/unistd.js';

/** The pid applications see (LKL's host process is one process). */
let processPid = 1;

initcall(INIT_CORE, 'process', () => {
  // The process the syscall threads act for: root credentials to start with.
  processPid = current().pid;
  processContext().cred = rootCred();
});

const validTs = (t: timespec64) =>
  t && Number.isFinite(t.sec) && Number.isInteger(t.nsec) && t.sec >= 0 && t.nsec >= 0 && t.nsec < 1e9;

define_syscall(NR.__NR_nanosleep, 'nanosleep', async (req: timespec64) => {
  if (!validTs(req)) throw err(EINVAL);
  await sleepNs(req.sec * 1e9 + req.nsec);
  return 0;
});
define_syscall(NR.__NR_clock_gettime, 'clock_gettime', (clk: number) => {
  if (clk === CLOCK_REALTIME) return ktime_get_real_ts64();
  if (clk === CLOCK_MONOTONIC || clk === CLOCK_BOOTTIME) return ktime_get_ts64();
  throw err(EINVAL);
});
define_syscall(NR.__NR_clock_settime, 'clock_settime', (clk: number, tp: timespec64) => {
  if (clk !== CLOCK_REALTIME) throw err(EINVAL);
  if (!validTs(tp)) throw err(EINVAL);
  if (!capable(CAP_SYS_TIME)) throw err(EPERM);
  setRealtime(tp);
  return 0;
});
define_syscall(NR.__NR_getpid, 'getpid', () => processPid);
define_syscall(NR.__NR_gettid, 'gettid', () => current().pid);
define_syscall(NR.__NR_reboot, 'reboot', (m1: number, m2: number, cmd: number) => {
  if (!capable(CAP_SYS_BOOT)) throw err(EPERM);
  if (m1 !== LINUX_REBOOT_MAGIC1 || m2 !== LINUX_REBOOT_MAGIC2) throw err(EINVAL);
  if (cmd !== LINUX_REBOOT_CMD_HALT && cmd !== LINUX_REBOOT_CMD_POWER_OFF && cmd !== LINUX_REBOOT_CMD_RESTART)
    throw err(EINVAL);
  // The halt itself (sync, unmount, stopping threads) runs from haltKernel(), which the
  // public API calls once this returns; reboot only validates and acknowledges.
  return 0;
});
export { kthread_run as kthreadRun };
