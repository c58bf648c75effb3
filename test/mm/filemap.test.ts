// Page cache and writeback, exercised from a kernel thread against a toy filesystem whose
// "disk" is a host array: read-ahead, write_begin/write_end, dirty accounting, fsync,
// truncation, reclaim under memory pressure, and writeback errors reported by fsync.
import t from 'tap';
import { startKernel } from '../../lib/index.js';
import { runAsInit } from '../../lib/kernel/arch/threads.js';
import {
  address_space, file as File, inode as Inode, super_block, vfsmount,
  type address_space_operations, type file_system_type,
} from '../../lib/kernel/include/fs.js';
import {
  PAGE_SIZE, end_page_read, end_page_writeback, find_or_create_page, filemap_read, generic_perform_write,
  set_page_writeback, truncate_pagecache, unlock_page, pageCacheStats,
} from '../../lib/kernel/mm/filemap.js';
import { put_page, PG_uptodate, memInfo, type page } from '../../lib/kernel/mm/page_alloc.js';
import {
  set_page_dirty, vfs_fsync_range, writebackStats,
} from '../../lib/kernel/fs/fs-writeback.js';
import { Errno } from '../../lib/kernel/include/errno.js';
import { d_make_root } from '../../lib/kernel/fs/dcache.js';

/** A toy block-less filesystem: page index -> bytes in a Map ("the disk"). */
function toyFs(failWrites = false) {
  const disk = new Map<number, Uint8Array>();
  const stats = { reads: 0, writes: 0, raBatches: 0 };
  const fstype: file_system_type = { name: 'toy', fs_flags: 0, async fill_super() {} };
  const sb = new super_block(fstype);
  sb.s_op = { async statfs() { throw new Error('unused'); } };
  const inode = new Inode(sb);
  inode.i_mode = 0o100644;
  const aops: address_space_operations = {
    async readpage(_f, page: page) {
      stats.reads++;
      const d = disk.get(page.index);
      if (d) page.data.set(d); else page.data.fill(0);
      end_page_read(page, true);
    },
    async readahead(_m, pages) {
      stats.raBatches++;
      for (const p of pages) await aops.readpage(null, p);
    },
    async writepage(page: page) {
      stats.writes++;
      set_page_writeback(page);
      unlock_page(page);
      if (!failWrites) disk.set(page.index, page.data.slice());
      end_page_writeback(page, failWrites);
    },
    async write_begin(_f, m: address_space, pos: number, len: number) {
      const page = await find_or_create_page(m, Math.floor(pos / PAGE_SIZE));
      if (!page.test(PG_uptodate)) {
        const off = pos % PAGE_SIZE;
        if (off !== 0 || len !== PAGE_SIZE) {
          const d = disk.get(page.index);
          if (d) page.data.set(d);
        }
        page.set(PG_uptodate);
      }
      return page;
    },
    async write_end(_f, m: address_space, pos: number, _len: number, copied: number, page: page) {
      if (pos + copied > m.host.i_size) m.host.i_size = pos + copied;
      set_page_dirty(page);
      unlock_page(page);
      put_page(page);
      return copied;
    },
  };
  inode.i_mapping.a_ops = aops;
  // The file's dentry holds the inode, as a real open file's does (file_accessed touches its atime).
  const root = d_make_root(inode);
  const mnt = new vfsmount(root, sb, null, null);
  const file = new File({ mnt, dentry: root }, inode, {});
  return { disk, stats, inode, file, sb };
}

t.test('write, read back, fsync, truncate', async (t) => {
  const k = await startKernel({ memMiB: 16 });
  t.teardown(() => k.halt());
  const r = await runAsInit('test', async () => {
    const fs = toyFs();
    const data = new Uint8Array(3 * PAGE_SIZE + 123);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
    const n = await generic_perform_write(fs.file, fs.inode.i_mapping, data, 100);
    const dirtyAfterWrite = writebackStats().dirtyPages;
    const back = new Uint8Array(data.length);
    const got = await filemap_read(fs.file, back, 100);
    await vfs_fsync_range(fs.file, 0, Infinity, false);
    const dirtyAfterSync = writebackStats().dirtyPages;
    const onDisk = new Uint8Array(4 * PAGE_SIZE);
    for (const [i, b] of fs.disk) onDisk.set(b, i * PAGE_SIZE);
    fs.inode.i_size = 2 * PAGE_SIZE + 10;
    await truncate_pagecache(fs.inode, fs.inode.i_size);
    const cachedPages = [...fs.inode.i_mapping.pages.keys()].sort();
    const p2 = fs.inode.i_mapping.pages.get(2)!;
    const tailZero = p2.data.subarray(10).every((b) => b === 0);
    return { n, dirtyAfterWrite, got, back, dirtyAfterSync, onDisk, data, cachedPages, tailZero, writes: fs.stats.writes };
  });
  t.equal(r.n, r.data.length, 'write wrote everything');
  t.equal(r.dirtyAfterWrite, 4, 'four pages dirty after an unaligned write over 4 pages');
  t.equal(r.got, r.data.length, 'read returns everything');
  t.same(r.back, r.data, 'read back equals written');
  t.equal(r.dirtyAfterSync, 0, 'fsync cleaned every page');
  t.equal(r.writes, 4, 'four writepage calls');
  t.same(r.onDisk.subarray(100, 100 + r.data.length), r.data, 'disk holds the data after fsync');
  t.same(r.cachedPages, [0, 1, 2], 'truncate dropped the pages past the new size');
  t.ok(r.tailZero, 'truncate zeroed the tail of the partial page');
});

t.test('read-ahead and reclaim under memory pressure', async (t) => {
  const k = await startKernel({ memMiB: 4 }); // 1024 frames
  t.teardown(() => k.halt());
  const r = await runAsInit('test', async () => {
    const fs = toyFs();
    const pages = 3000; // bigger than memory: reading it all must reclaim
    for (let i = 0; i < pages; i++) fs.disk.set(i, new Uint8Array(PAGE_SIZE).fill(i & 0xff));
    fs.inode.i_size = pages * PAGE_SIZE;
    const buf = new Uint8Array(64 * 1024);
    let ok = true;
    for (let pos = 0; pos < fs.inode.i_size; pos += buf.length) {
      const n = await filemap_read(fs.file, buf, pos);
      if (n !== Math.min(buf.length, fs.inode.i_size - pos)) ok = false;
      for (let j = 0; j < n; j += PAGE_SIZE) if (buf[j] !== (((pos + j) / PAGE_SIZE) & 0xff)) ok = false;
    }
    return { ok, reads: fs.stats.reads, ra: fs.stats.raBatches, cache: pageCacheStats() };
  });
  t.ok(r.ok, 'every byte read correctly although the file is 3x memory');
  t.equal(r.reads, 3000, 'each page read from "disk" exactly once');
  t.ok(r.ra < 3000 / 8, `read-ahead batched the reads (${r.ra} batches)`);
  t.ok(r.cache.reclaimed > 1000, `clean pages were reclaimed (${r.cache.reclaimed})`);
  t.ok(memInfo().failures === 0, 'no allocation failed');
});

t.test('read-ahead: a sequential reader finds its pages requested before it gets there; a random one reads little', async (t) => {
  const k = await startKernel({ memMiB: 32 });
  t.teardown(() => k.halt());
  const r = await runAsInit('test', async () => {
    const fs = toyFs();
    const pages = 2000;
    for (let i = 0; i < pages; i++) fs.disk.set(i, new Uint8Array(PAGE_SIZE).fill(i & 0xff));
    fs.inode.i_size = pages * PAGE_SIZE;
    const m = fs.inode.i_mapping;
    // Sequential, 16 KiB at a time: a call whose first page is not in the page cache yet
    // waits for I/O (a synchronous miss); the PG_readahead marker should prevent all but the first.
    const buf = new Uint8Array(4 * PAGE_SIZE);
    let syncMisses = 0, ok = true;
    for (let pos = 0; pos < fs.inode.i_size; pos += buf.length) {
      if (!m.pages.has(pos / PAGE_SIZE)) syncMisses++;
      const n = await filemap_read(fs.file, buf, pos);
      if (n !== buf.length || buf[0] !== ((pos / PAGE_SIZE) & 0xff)) ok = false;
    }
    const seq = { syncMisses, ok, reads: fs.stats.reads, batches: fs.stats.raBatches };
    // Random single pages of a second file: each miss reads a small window, not a big one.
    const g = toyFs();
    for (let i = 0; i < pages; i++) g.disk.set(i, new Uint8Array(PAGE_SIZE).fill(i & 0xff));
    g.inode.i_size = pages * PAGE_SIZE;
    const one = new Uint8Array(PAGE_SIZE);
    let x = 12345, calls = 0;
    for (let i = 0; i < 50; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const idx = 1 + (x % (pages - 1));
      await filemap_read(g.file, one, idx * PAGE_SIZE);
      calls++;
      if (one[0] !== (idx & 0xff)) ok = false;
    }
    return { seq, rnd: { reads: g.stats.reads, calls, ok } };
  });
  t.ok(r.seq.ok, 'the sequential reader read the right bytes');
  t.equal(r.seq.reads, 2000, 'every page read from "disk" once');
  t.equal(r.seq.syncMisses, 1, 'only the first call found its page not yet requested (later windows were started at the marker, ahead of the reader)');
  t.ok(r.seq.batches <= 20, `the windows grew to 1 MiB (${r.seq.batches} read-ahead batches for 2000 pages)`);
  t.ok(r.rnd.ok, 'the random reader read the right bytes');
  t.ok(r.rnd.reads <= r.rnd.calls * 8, `random single-page reads read at most 8 pages each (${r.rnd.reads} for ${r.rnd.calls})`);
});

t.test('dirty pages bigger than memory are written back, not lost', async (t) => {
  const k = await startKernel({ memMiB: 4 });
  t.teardown(() => k.halt());
  const r = await runAsInit('test', async () => {
    const fs = toyFs();
    const chunk = new Uint8Array(PAGE_SIZE);
    for (let i = 0; i < 3000; i++) {
      chunk.fill(i & 0xff);
      const n = await generic_perform_write(fs.file, fs.inode.i_mapping, chunk, i * PAGE_SIZE);
      if (n !== PAGE_SIZE) return { failedAt: i };
    }
    await vfs_fsync_range(fs.file, 0, Infinity, false);
    let ok = fs.disk.size === 3000;
    for (const [i, b] of fs.disk) if (b[0] !== (i & 0xff) || b[4095] !== (i & 0xff)) ok = false;
    return { ok, failedAt: -1 };
  });
  t.equal(r.failedAt, -1, 'no write failed for lack of memory');
  t.ok(r.ok, 'every page reached the disk');
});

t.test('a writeback error is reported by fsync as EIO', async (t) => {
  const k = await startKernel({ memMiB: 8 });
  t.teardown(() => k.halt());
  const r = await runAsInit('test', async () => {
    const fs = toyFs(true);
    await generic_perform_write(fs.file, fs.inode.i_mapping, new Uint8Array(10), 0);
    let errno = 0;
    try { await vfs_fsync_range(fs.file, 0, Infinity, false); } catch (e) { errno = (e as Errno).errno; }
    let second = 0;
    try { await vfs_fsync_range(fs.file, 0, Infinity, false); } catch (e) { second = (e as Errno).errno; }
    return { errno, second };
  });
  t.equal(r.errno, 5, 'fsync fails with EIO');
  t.equal(r.second, 0, 'the error is reported once');
});
