// The execution model under load: 1,000 concurrent system calls, kernel threads that
// interleave only where they sleep, IRQs in raise order, timers in deadline order, and a
// halt that leaves no thread or timer behind.
import t from 'tap';
import { O_CREAT, O_RDONLY, O_WRONLY } from '../../lib/index.js';
import { allTasks, kthread_run } from '../../lib/kernel/arch/threads.js';
import { alloc_irq_number, free_irq, request_irq, trigger_irq } from '../../lib/kernel/arch/irq.js';
import { sleepNs } from '../../lib/kernel/kernel/wait.js';
import { add_timer, pendingTimers, type timer_list } from '../../lib/kernel/kernel/timer.js';
import { boot, dec, enc } from './helpers.js';

/** Run body as a kernel thread and resolve (on the host side) when it ends. */
function inKthread(name: string, body: () => Promise<void>): Promise<void> {
  return new Promise((res, rej) => {
    kthread_run(name, async () => { try { await body(); res(); } catch (e) { rej(e); } });
  });
}

t.test('execution model', async (t) => {
  const handlesBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const k = await boot();
  const s = k.sys;

  await t.test('1,000 concurrent open/write/close from host code', async (t) => {
    t.equal(await s.mkdir('/many', 0o755), 0);
    const results = await Promise.all(Array.from({ length: 1000 }, async (_, i) => {
      const fd = await s.open(`/many/f${i}`, O_CREAT | O_WRONLY, 0o644);
      if (fd < 0) return `open ${fd}`;
      const n = await s.write(fd, enc(`file number ${i}`));
      const c = await s.close(fd);
      return n === enc(`file number ${i}`).length && c === 0 ? 'ok' : `write ${n} close ${c}`;
    }));
    t.equal(results.filter((r) => r !== 'ok').length, 0, 'every call succeeded');
    const reads = await Promise.all(Array.from({ length: 1000 }, async (_, i) => {
      const fd = await s.open(`/many/f${i}`, O_RDONLY);
      const b = new Uint8Array(64);
      const n = await s.read(fd, b);
      await s.close(fd);
      return dec(b.subarray(0, n)) === `file number ${i}`;
    }));
    t.equal(reads.filter((x) => !x).length, 0, 'every file has its own contents');
  });

  await t.test('two kernel threads interleave only at sleeps', async (t) => {
    const log: string[] = [];
    const body = (name: string) => async () => {
      for (let i = 0; i < 5; i++) {
        log.push(`${name}${i}<`);
        // Work between two sleeps: no other kernel thread may run in here.
        let x = 0;
        for (let j = 0; j < 20000; j++) x += j;
        log.push(`${name}${i}>${x > 0 ? '' : '!'}`);
        await sleepNs(1e6);
      }
    };
    await Promise.all([inKthread('A', body('A')), inKthread('B', body('B'))]);
    t.equal(log.length, 20);
    for (let i = 0; i < log.length; i += 2) {
      t.equal(log[i + 1]!.slice(0, 3), log[i]!.slice(0, 2) + '>', `${log[i]} is followed by its own end`);
    }
    const order = log.filter((_, i) => i % 2 === 0).map((x) => x[0]).join('');
    t.ok(/AB|BA/.test(order), `the threads did interleave (${order})`);
  });

  await t.test('IRQs run in the order raised', async (t) => {
    const irqA = alloc_irq_number(), irqB = alloc_irq_number();
    const seen: number[] = [];
    request_irq(irqA, (_irq, data) => seen.push(data as number));
    request_irq(irqB, (_irq, data) => seen.push(data as number));
    for (let i = 0; i < 200; i++) trigger_irq(i % 3 === 0 ? irqB : irqA, i);
    await inKthread('irq-wait', async () => { await sleepNs(2e6); });
    t.same(seen, Array.from({ length: 200 }, (_, i) => i), 'handlers saw the data in raise order');
    free_irq(irqA); free_irq(irqB);
  });

  await t.test('100 timers fire in deadline order', async (t) => {
    const fired: number[] = [];
    const deadlines: number[] = [];
    await inKthread('timers', async () => {
      const ts: timer_list[] = [];
      for (let i = 0; i < 100; i++) {
        const delay = ((i * 7919) % 100) * 2e5; // 0 .. 20 ms, shuffled
        const tm = add_timer(delay, () => fired.push(tm.expires));
        ts.push(tm);
        deadlines.push(tm.expires);
      }
      await sleepNs(40e6);
      void ts;
    });
    t.equal(fired.length, 100, 'all fired');
    t.same(fired, [...deadlines].sort((a, b) => a - b), 'in deadline order');
    t.equal(pendingTimers(), 0, 'none pending');
  });

  await k.halt();
  t.equal(allTasks().length, 0, 'no kernel thread left after halt');
  t.equal(pendingTimers(), 0, 'no kernel timer left');
  const handlesAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  t.ok(handlesAfter <= handlesBefore, `no host timer left alive (${handlesBefore} -> ${handlesAfter})`);
});
