// Boot, a few non-filesystem system calls, and halt.
import t from 'tap';
import { startKernel, CLOCK_MONOTONIC, CLOCK_REALTIME, EINVAL, ENOSYS } from '../../lib/index.js';
import { syscall } from '../../lib/kernel/arch/syscalls.js';

t.test('boot, time, nanosleep, halt', async (t) => {
  const k = await startKernel({ memMiB: 16 });
  const rt = await k.sys.clock_gettime(CLOCK_REALTIME);
  t.type(rt, 'object');
  if (typeof rt === 'number') return;
  t.ok(Math.abs(rt.sec - Date.now() / 1000) < 5, 'realtime near host time');
  const m0 = await k.sys.clock_gettime(CLOCK_MONOTONIC) as { sec: number; nsec: number };
  const t0 = process.hrtime.bigint();
  t.equal(await k.sys.nanosleep({ sec: 0, nsec: 30_000_000 }), 0);
  const slept = Number(process.hrtime.bigint() - t0);
  t.ok(slept >= 30_000_000, `slept ${slept} ns >= 30 ms`);
  const m1 = await k.sys.clock_gettime(CLOCK_MONOTONIC) as { sec: number; nsec: number };
  t.ok((m1.sec - m0.sec) * 1e9 + (m1.nsec - m0.nsec) >= 30_000_000, 'monotonic advanced');
  t.equal(await k.sys.nanosleep({ sec: 0, nsec: 2e9 }), -EINVAL, 'bad nsec is EINVAL');
  t.equal(await syscall(9999, []), -ENOSYS, 'unknown syscall number is ENOSYS');
  const pid = await k.sys.getpid();
  t.ok(pid > 0);
  await k.halt();
});
