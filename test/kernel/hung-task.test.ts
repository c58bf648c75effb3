// The hang report: khungtaskd (sysctl.kernel.hung_task_timeout_secs=1) names a task stuck on
// a lock that another task holds forever, with the lock's name and its holder; the
// sysrq-t dump (showState) lists every task and the system call each one serves; idle
// threads and a task in nanosleep are never reported as hung.
import t from 'tap';
import { startKernel } from '../../lib/index.js';
import { kthread_run } from '../../lib/kernel/arch/threads.js';
import { runAsInit } from '../../lib/kernel/arch/threads.js';
import { mutex, wait_event, wait_queue_head } from '../../lib/kernel/kernel/wait.js';
import { captureKernelMessages } from '../lib/printk.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a task stuck on a held mutex is reported with the lock and its holder', async (t) => {
  const k = await startKernel({ memMiB: 16, cmdline: 'sysctl.kernel.hung_task_timeout_secs=1' });
  const msgs: string[] = [];
  captureKernelMessages((m) => msgs.push(m));
  t.teardown(() => captureKernelMessages(null));

  const lock = new mutex('test_stuck_lock');
  const release = new wait_queue_head();
  let released = false;
  let victimGot = false;
  let holderPid = 0, victimPid = 0;
  await runAsInit('setup', async () => {
    const holder = kthread_run('holder', async () => {
      await lock.lock();
      await wait_event(release, () => released);
      lock.unlock();
    });
    const victim = kthread_run('victim', async () => {
      await lock.lock();
      victimGot = true;
      lock.unlock();
    });
    holderPid = holder.pid;
    victimPid = victim.pid;
  });
  // A long nanosleep in a syscall thread: TASK_INTERRUPTIBLE, never hung.
  const nap = k.sys.nanosleep({ sec: 4, nsec: 0 });
  // Reported between 1 and 2 s after the first check that sees it asleep: wait up to 5 s.
  const t0 = Date.now();
  while (Date.now() - t0 < 5000 && !msgs.some((m) => m.startsWith(`INFO: task victim:${victimPid} `))) await sleep(100);
  const info = msgs.find((m) => m.startsWith(`INFO: task victim:${victimPid} `));
  t.equal(info, `INFO: task victim:${victimPid} blocked for more than 1 seconds.`, 'khungtaskd names the stuck task');
  const line = msgs.find((m) => m.startsWith('task:victim ') && m.includes('blocked on'));
  t.match(line, new RegExp(`state:D pid:${victimPid} blocked on mutex "test_stuck_lock" held by holder/${holderPid} for \\d+\\.\\d s`),
    'its line names the lock and the holder');
  t.ok(msgs.some((m) => m.startsWith(`INFO: task holder:${holderPid} `)), 'the holder, asleep in D too, is reported');
  t.ok(msgs.some((m) => /^Show State: \d+ tasks$/.test(m)), 'the report ends with the state dump of every task');
  t.ok(msgs.some((m) => /^task:syscall\/\d+ +state:I /.test(m)), 'the dump shows idle syscall threads in state I');
  t.notOk(msgs.some((m) => /^INFO: task (syscall|kworker|khungtaskd)/.test(m)), 'idle threads are never reported');
  t.notOk(victimGot, 'the victim is still waiting');

  msgs.length = 0;
  await k.showState();
  t.ok(msgs.some((m) => /^task:syscall\/\d+ +state:S pid:\d+ syscall:nanosleep blocked on hrtimer_nanosleep/.test(m)),
    'sysrq-t shows the syscall thread serving nanosleep, in S');
  t.ok(msgs.some((m) => m.startsWith('task:khungtaskd ')), 'and khungtaskd');
  t.equal(await nap, 0, 'the nanosleep ends normally');
  t.notOk(msgs.some((m) => m.startsWith('INFO: task syscall')), 'the 4 s nanosleep was not reported as hung');

  await runAsInit('release', async () => { released = true; release.wakeUpAll(); });
  const t1 = Date.now();
  while (!victimGot && Date.now() - t1 < 2000) await sleep(20);
  t.ok(victimGot, 'once released, the victim gets the lock');
  await k.halt();
});

t.test('off by default: no khungtaskd thread', async (t) => {
  const k = await startKernel({ memMiB: 16 });
  const msgs: string[] = [];
  captureKernelMessages((m) => msgs.push(m));
  t.teardown(() => captureKernelMessages(null));
  await k.showState();
  t.ok(msgs.some((m) => m.startsWith('task:sysrq ')), 'the dump includes the sysrq thread itself');
  t.notOk(msgs.some((m) => m.startsWith('task:khungtaskd')), 'no khungtaskd when hung_task_timeout_secs is 0');
  await k.halt();
});
