// Physical memory of more than 2 GiB: page frames past 2^31 bytes have the right physical
// address and view (`pfn << PAGE_SHIFT` turned negative there), and the allocator hands
// them out and takes them back like any other frame.
import t from 'tap';
import { startKernel } from '../../lib/index.js';
import { page, PAGE_SIZE, alloc_page, memInfo, physMem, put_page } from '../../lib/kernel/mm/page_alloc.js';

t.test('frames past 2 GiB of physical memory (3 GiB; V8 caps one typed array at 4 GiB)', async (t) => {
  const k = await startKernel({ memMiB: 3072 });
  t.teardown(() => k.halt());
  t.equal(memInfo().totalPages, (3072) * 256, 'every frame of 3 GiB is counted');
  for (const pfn of [2 ** 19 - 1, 2 ** 19, 2 ** 19 + 12345, 2 ** 19 + 2 ** 17, (3072) * 256 - 1]) {
    const p = new page(pfn);
    t.equal(p.phys, pfn * PAGE_SIZE, `frame ${pfn}: physical address ${pfn * PAGE_SIZE}`);
    t.equal(p.data.byteOffset, pfn * PAGE_SIZE, `frame ${pfn}: its view starts there`);
    t.equal(p.data.length, PAGE_SIZE, `frame ${pfn}: one page long`);
    p.data[0] = 0xa5; p.data[PAGE_SIZE - 1] = 0x5a;
    const mem = physMem();
    t.equal(mem[pfn * PAGE_SIZE], 0xa5, `frame ${pfn}: its first byte is physical memory's`);
    t.equal(mem[pfn * PAGE_SIZE + PAGE_SIZE - 1], 0x5a, `frame ${pfn}: and its last`);
    p.data.fill(0);
  }
  const got: page[] = [];
  for (let p = alloc_page(false); p; p = got.length < 8 ? alloc_page(false) : null) got.push(p);
  t.equal(got.length, 8, 'the allocator hands out frames');
  for (const p of got) put_page(p);
});
