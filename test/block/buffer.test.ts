/*
 * Buffer heads (fs/buffer.ts) against a MemoryStore: bread/getblk/brelse, dirtying and
 * syncing, block sizes, coherency with /dev reads, errors; and the generic file-data
 * helpers over a get_block (holes, unwritten and new blocks, partial writes, truncation).
 */
import t, { type Test } from 'tap';
import { startKernel, O_RDONLY, EIO } from '../../lib/index.js';
import { FaultyStore, MemoryStore } from '../../lib/drivers/stores.js';
import { runAsInit } from '../../lib/kernel/arch/threads.js';
import { bdevByName, set_blocksize, sync_blockdev } from '../../lib/kernel/block/bdev.js';
import * as B from '../../lib/kernel/fs/buffer.js';
import * as M from '../../lib/kernel/fs/mpage.js';
import { inode as Inode, super_block, type address_space_operations } from '../../lib/kernel/include/fs.js';
import type { GetBlock } from '../../lib/kernel/include/blk.js';
import { read_cache_page } from '../../lib/kernel/mm/filemap.js';
import { filemap_write_and_wait_range } from '../../lib/kernel/fs/fs-writeback.js';
import { put_page } from '../../lib/kernel/mm/page_alloc.js';
import { isErrno } from '../../lib/kernel/include/errno.js';
import { S_IFREG } from '../../lib/kernel/include/uapi.js';
import { fillRandom, firstDiff, rng } from './helpers.js';

const MiB = 1 << 20;

async function withDisk(t: Test, size: number, fn: (store: FaultyStore, mem: MemoryStore, k: Awaited<ReturnType<typeof startKernel>>) => Promise<void>) {
  const mem = new MemoryStore(size);
  fillRandom(mem.data, rng(5));
  const store = new FaultyStore(mem);
  const k = await startKernel({ memMiB: 32 });
  t.ok(await k.diskAdd({ store }) >= 0);
  try { await fn(store, mem, k); } finally { await k.halt(); }
}

const expectErrno = async (t: Test, p: Promise<unknown>, errno: number, what: string) => {
  try { await p; t.fail(`${what}: no error`); } catch (e) { t.ok(isErrno(e) && e.errno === errno, `${what}: errno ${(e as { errno?: number }).errno}`); }
};

t.test('bread, dirty, sync, block sizes, coherency', async (t) => {
  await withDisk(t, 4 * MiB, async (store, mem, k) => {
    const model = mem.data.slice();
    await runAsInit('bh', async () => {
      const bdev = bdevByName('vda')!;
      t.equal(bdev.bd_block_size, 4096, 'initial block size: a page');
      for (const size of [4096, 1024, 512, 2048]) {
        await set_blocksize(bdev, size);
        const bh = await B.bread(bdev, 7, size);
        t.equal(bh.b_size, size);
        t.equal(firstDiff(bh.b_data, model.subarray(7 * size, 8 * size)), -1, `bread block 7 of ${size}`);
        B.brelse(bh);
      }
      await set_blocksize(bdev, 1024);
      /* dirty + sync_dirty_buffer writes exactly that block */
      const bh = await B.bread(bdev, 100, 1024);
      bh.b_data.fill(0xaa);
      B.mark_buffer_dirty(bh);
      t.ok(bh.dirty);
      t.equal(mem.data[100 * 1024], model[100 * 1024], 'not written before sync');
      const w0 = store.counts.write;
      await B.sync_dirty_buffer(bh);
      t.notOk(bh.dirty);
      t.equal(store.counts.write - w0, 1, 'one write');
      t.equal(firstDiff(mem.data.subarray(100 * 1024, 101 * 1024), new Uint8Array(1024).fill(0xaa)), -1, 'the block');
      t.equal(firstDiff(mem.data.subarray(99 * 1024, 100 * 1024), model.subarray(99 * 1024, 100 * 1024)), -1, 'not its neighbours');
      model.fill(0xaa, 100 * 1024, 101 * 1024);
      /* getblk of a fresh block, filled without reading */
      const r0 = store.counts.read;
      const nb = await B.getblk(bdev, 2000, 1024);
      t.notOk(nb.uptodate);
      nb.b_data.fill(0x33);
      nb.set(1 /* BH_Uptodate */);
      B.mark_buffer_dirty(nb);
      t.equal(store.counts.read, r0, 'getblk does not read');
      B.brelse(nb);
      model.fill(0x33, 2000 * 1024, 2001 * 1024);
      /* writeback of the bdev mapping writes only dirty buffers of a partly-read page */
      await sync_blockdev(bdev);
      t.equal(firstDiff(mem.data, model), -1, 'sync_blockdev wrote dirty buffers and nothing else');
      /* same block twice: the same buffer */
      const a = await B.getblk(bdev, 100, 1024), b = await B.getblk(bdev, 100, 1024);
      t.equal(a, b, 'one buffer per block');
      t.equal(a.b_count, 3, 'counted references (bh kept + 2)');
      B.brelse(a); B.brelse(b); B.brelse(bh);
      /* past the end */
      await expectErrno(t, B.getblk(bdev, 4096, 1024), EIO, 'getblk past the end');
      /* mark_buffer_dirty_inode + sync_mapping_buffers */
      const owner = new Inode(bdev.bd_inode.i_sb);
      const mb = await B.bread(bdev, 300, 1024);
      mb.b_data.fill(0x44);
      B.mark_buffer_dirty_inode(mb, owner);
      t.equal(owner.i_mapping.private_list.length, 1);
      await B.sync_mapping_buffers(owner.i_mapping);
      t.equal(owner.i_mapping.private_list.length, 0);
      t.equal(mem.data[300 * 1024], 0x44, 'sync_mapping_buffers wrote it');
      model.fill(0x44, 300 * 1024, 301 * 1024);
      B.brelse(mb);
      /* a buffer changed in the cache is what /dev/vda reads */
      const cb = await B.bread(bdev, 400, 1024);
      cb.b_data.fill(0x55);
      B.mark_buffer_dirty(cb);
      B.brelse(cb);
      model.fill(0x55, 400 * 1024, 401 * 1024);
    });
    const fd = await k.sys.open('/dev/vda', O_RDONLY);
    const buf = new Uint8Array(4096);
    t.equal(await k.sys.pread64(fd, buf, 400 * 1024), 4096);
    t.equal(firstDiff(buf, model.subarray(400 * 1024, 404 * 1024)), -1, '/dev/vda sees the dirty buffer (one page cache)');
    await k.sys.close(fd);
    t.equal(firstDiff(mem.data, model), -1, 'last close wrote it back');
  });
});

t.test('buffer I/O errors', async (t) => {
  await withDisk(t, 1 * MiB, async (store) => {
    await runAsInit('bh-err', async () => {
      const bdev = bdevByName('vda')!;
      store.addFault({ op: 'read', pos: 8192, len: 1 });
      await expectErrno(t, B.bread(bdev, 2, 4096), EIO, 'bread of a bad block');
      store.clearFaults();
      const bh = await B.bread(bdev, 2, 4096);
      t.ok(bh.uptodate, 'readable once the fault is gone');
      store.addFault({ op: 'write', pos: 8192, len: 1 });
      bh.b_data[0] ^= 1;
      B.mark_buffer_dirty(bh);
      await expectErrno(t, B.sync_dirty_buffer(bh), EIO, 'sync_dirty_buffer of a bad block');
      t.ok(bh.test(1 << 11 /* BH_Write_EIO */), 'BH_Write_EIO');
      store.clearFaults();
      B.brelse(bh);
    });
  });
});

t.test('a page written back after one of its buffers failed earlier: only this writeback\'s buffers count', async (t) => {
  await withDisk(t, 1 * MiB, async (store, mem) => {
    await runAsInit('bh-err-page', async () => {
      const bdev = bdevByName('vda')!;
      await set_blocksize(bdev, 1024);
      const m = bdev.bd_inode.i_mapping;
      // Blocks 40 and 41 share page 10; block 40 cannot be written.
      const a = await B.bread(bdev, 40, 1024), b = await B.bread(bdev, 41, 1024);
      store.addFault({ op: 'write', pos: 40 * 1024, len: 1024 });
      a.b_data.fill(0x61); b.b_data.fill(0x62);
      B.mark_buffer_dirty(a); B.mark_buffer_dirty(b);
      await expectErrno(t, filemap_write_and_wait_range(m), EIO, 'writeback of the page with the failing block');
      t.ok(a.test(1 << 11 /* BH_Write_EIO */), 'block 40 keeps BH_Write_EIO');
      // Block 41 alone changes again and is written: that writeback succeeds, as on Linux
      // (end_buffer_async_write records the error of the buffer that failed, once).
      b.b_data.fill(0x63);
      B.mark_buffer_dirty(b);
      try {
        await filemap_write_and_wait_range(m);
        t.pass('the next writeback of the page, without block 40, reports no error');
      } catch (e) { t.fail(`the next writeback reported ${String(e)}: the old error of block 40 again`); }
      t.equal(mem.data[41 * 1024], 0x63, 'block 41 is on disk');
      store.clearFaults();
      B.brelse(a); B.brelse(b);
    });
  });
});

t.test('file data over get_block: holes, unwritten, new blocks, partial writes, truncate', async (t) => {
  await withDisk(t, 2 * MiB, async (_store, mem) => {
    const model = mem.data.slice();
    await runAsInit('fileio', async () => {
      const bdev = bdevByName('vda')!;
      await set_blocksize(bdev, 1024);
      const sb = new super_block({ name: 'testfs', fs_flags: 1, async fill_super() {} });
      sb.s_op = { async statfs() { throw new Error('no'); } };
      sb.s_bdev = bdev;
      sb.s_blocksize = 1024; sb.s_blocksize_bits = 10;
      /* file block -> device block (0: hole); 'u' marks unwritten */
      const map = new Map<number, number>([[0, 500], [1, 501], [2, 502], [3, 503], [4, 510], [5, 0], [6, 520], [7, 521], [8, 600], [9, 601]]);
      const unwritten = new Set([7]);
      let nextFree = 900;
      const calls: string[] = [];
      const getBlock: GetBlock = async (_inode, iblock, max, create) => {
        calls.push(`${iblock}+${max}${create ? 'c' : ''}`);
        let p = map.get(iblock) ?? 0;
        if (!p && create) { p = nextFree++; map.set(iblock, p); return { pblk: p, len: 1, isNew: true }; }
        if (!p) return { pblk: 0, len: 1 };
        let len = 1;
        while (len < max && map.get(iblock + len) === p + len && unwritten.has(iblock + len) === unwritten.has(iblock)) len++;
        return { pblk: p, len, unwritten: unwritten.has(iblock) };
      };
      const aops: address_space_operations = {
        readpage: (_f, page) => M.mpage_read_folio(page, getBlock),
        readahead: (_m, pages) => M.mpage_readahead(pages, getBlock),
        writepage: (page, wbc) => B.block_write_full_page(page, getBlock, wbc),
        writepages: (m, wbc) => M.mpage_writepages(m, wbc, getBlock),
        write_begin: (_f, m, pos, len) => B.block_write_begin(m, pos, len, getBlock),
        write_end: (_f, m, pos, len, copied, page) => B.generic_write_end(m, pos, len, copied, page),
        invalidate_folio: B.block_invalidate_folio,
        release_folio: B.try_to_free_buffers,
      };
      const inode = new Inode(sb);
      inode.i_ino = 12; inode.i_mode = S_IFREG | 0o644; inode.i_blkbits = 10;
      inode.i_size = 9 * 1024 + 100;   /* block 9 is partly inside */
      inode.i_mapping.a_ops = aops;
      const dev = (b: number) => model.subarray(b * 1024, (b + 1) * 1024);
      const expectFile = new Uint8Array(12 * 1024);
      for (const [i, p] of map) if (p && !unwritten.has(i)) expectFile.set(dev(p), i * 1024);
      expectFile.fill(0, 9 * 1024 + 100);

      /* page 0: blocks 0-3 contiguous (500-503) → one bio */
      const p0 = await read_cache_page(inode.i_mapping, 0);
      t.equal(firstDiff(p0.data, expectFile.subarray(0, 4096)), -1, 'page 0: contiguous blocks');
      t.notOk(B.page_buffers(p0), 'read without buffers (mpage)');
      put_page(p0);
      /* page 1: 510, hole, 520, unwritten → buffer by buffer */
      const p1 = await read_cache_page(inode.i_mapping, 1);
      t.equal(firstDiff(p1.data, expectFile.subarray(4096, 8192)), -1, 'page 1: hole and unwritten read as zeros');
      t.ok(B.page_buffers(p1), 'read through buffers (not contiguous)');
      put_page(p1);
      /* page 2: 600, 601 partly past EOF, then past EOF */
      const p2 = await read_cache_page(inode.i_mapping, 2);
      /* as in Linux, the last block is read whole (bytes past i_size are whatever the disk
       * has; writeback zeroes them); blocks wholly past EOF are zeros */
      t.equal(firstDiff(p2.data.subarray(0, 1024 + 100), expectFile.subarray(8192, 9 * 1024 + 100)), -1, 'page 2: data up to EOF');
      t.equal(firstDiff(p2.data.subarray(2048), new Uint8Array(2048)), -1, 'page 2: blocks past EOF are zeros');
      put_page(p2);

      /* partial write into the hole (block 5): a new block, zeroed around the write */
      let page = await aops.write_begin!(null, inode.i_mapping, 5 * 1024 + 10, 20);
      page.data.fill(0x61, 1024 + 10, 1024 + 30);
      await aops.write_end!(null, inode.i_mapping, 5 * 1024 + 10, 20, 20, page);
      const nb = map.get(5)!;
      t.ok(nb >= 900, `block 5 allocated at ${nb}`);
      expectFile.fill(0, 5 * 1024, 6 * 1024);
      expectFile.fill(0x61, 5 * 1024 + 10, 5 * 1024 + 30);
      /* partial write into an existing block of an uncached page: read-before-write */
      const fresh = new Inode(sb);
      fresh.i_ino = 13; fresh.i_mode = S_IFREG | 0o644; fresh.i_blkbits = 10; fresh.i_size = inode.i_size;
      fresh.i_mapping.a_ops = aops;
      page = await aops.write_begin!(null, fresh.i_mapping, 2 * 1024 + 100, 50);
      t.equal(firstDiff(page.data.subarray(2048, 3072), dev(502)), -1, 'write_begin read the partly written block');
      page.data.fill(0x62, 2048 + 100, 2048 + 150);
      await aops.write_end!(null, fresh.i_mapping, 2 * 1024 + 100, 50, 50, page);
      /* extending write past EOF */
      page = await aops.write_begin!(null, inode.i_mapping, 10 * 1024 + 5, 10);
      page.data.fill(0x63, 2048 + 5, 2048 + 15);
      await aops.write_end!(null, inode.i_mapping, 10 * 1024 + 5, 10, 10, page);
      t.equal(inode.i_size, 10 * 1024 + 15, 'i_size grew');
      expectFile.fill(0x63, 10 * 1024 + 5, 10 * 1024 + 15);

      await filemap_write_and_wait_range(inode.i_mapping, 0, Infinity);
      await filemap_write_and_wait_range(fresh.i_mapping, 0, Infinity);
      const onDev = (b: number) => mem.data.subarray(b * 1024, (b + 1) * 1024);
      t.equal(firstDiff(onDev(nb), expectFile.subarray(5 * 1024, 6 * 1024)), -1, 'new block written with zeros around the data');
      const want502 = model.slice(502 * 1024, 503 * 1024); want502.fill(0x62, 100, 150);
      t.equal(firstDiff(onDev(502), want502), -1, 'partial write merged with the old contents');
      t.equal(firstDiff(onDev(map.get(10)!), expectFile.subarray(10 * 1024, 11 * 1024)), -1, 'extending write');
      t.equal(firstDiff(onDev(500), dev(500)), -1, 'clean blocks were not rewritten wrongly');

      /* truncate in the middle of block 10: the rest of the block becomes zeros */
      inode.i_size = 10 * 1024 + 8;
      await B.block_truncate_page(inode.i_mapping, inode.i_size, getBlock);
      await filemap_write_and_wait_range(inode.i_mapping, 0, Infinity);
      const want10 = new Uint8Array(1024); want10.fill(0x63, 5, 8);
      t.equal(firstDiff(onDev(map.get(10)!), want10), -1, 'block_truncate_page zeroed the tail');
      t.equal(await B.generic_block_bmap(inode.i_mapping, 4, getBlock), 510, 'bmap');
      t.equal(await B.generic_block_bmap(inode.i_mapping, 11, getBlock), 0, 'bmap of a hole');
    });
  });
});
