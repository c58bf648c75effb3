// Physical memory exhaustion is -ENOMEM at the system call, never a crash: ramfs keeps
// its data in the page cache (unevictable), so filling it exhausts the page allocator.
import t from 'tap';
import { startKernel, ENOMEM, O_CREAT, O_WRONLY } from '../../lib/index.js';
import { memInfo } from '../../lib/kernel/mm/page_alloc.js';

t.test('filling memory through ramfs gives ENOMEM, and the kernel recovers', async (t) => {
  const k = await startKernel({ memMiB: 4 });
  t.teardown(() => k.halt());
  const fd = await k.sys.open('/fill', O_CREAT | O_WRONLY, 0o644);
  t.ok(fd >= 0, 'created /fill');
  const chunk = new Uint8Array(64 * 1024).fill(0x5a);
  let written = 0;
  let last = 0;
  for (let i = 0; i < 200; i++) {
    last = await k.sys.write(fd, chunk);
    if (last <= 0) break;
    written += last;
  }
  // A write that hits exhaustion part-way returns the short count; the next one fails.
  if (last > 0) last = await k.sys.write(fd, chunk);
  t.equal(last, -ENOMEM, 'write fails with ENOMEM once memory is full');
  t.ok(written > 2 * 1024 * 1024 && written < 4 * 1024 * 1024, `wrote ${written} bytes before running out`);
  t.ok(memInfo().failures > 0, 'the allocator counted failed allocations');
  t.equal(await k.sys.close(fd), 0);
  t.equal(await k.sys.unlink('/fill'), 0, 'unlink frees the pages');
  const fd2 = await k.sys.open('/again', O_CREAT | O_WRONLY, 0o644);
  t.equal(await k.sys.write(fd2, chunk), chunk.length, 'memory is usable again after the file is gone');
  t.equal(await k.sys.close(fd2), 0);
});
