/*
 * Durability and failure paths of the block device: FLUSH reaches the store on fsync and
 * for PREFLUSH/FUA writes, host I/O errors come back as EIO, and a read-only disk is never
 * written.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { startKernel, O_RDONLY, O_RDWR, O_WRONLY, EIO, EPERM, EACCES } from '../../lib/index.js';
import { FaultyStore, FileStore, MemoryStore } from '../../lib/drivers/stores.js';
import { runAsInit } from '../../lib/kernel/arch/threads.js';
import { bdevByName, blkdev_get_for_super, set_blocksize } from '../../lib/kernel/block/bdev.js';
import { bio_alloc, submit_bio_wait, blkdev_issue_flush } from '../../lib/kernel/block/bio.js';
import { REQ_FUA, REQ_OP_READ, REQ_OP_WRITE, REQ_PREFLUSH } from '../../lib/kernel/include/blk.js';
import { alloc_page, put_page } from '../../lib/kernel/mm/page_alloc.js';
import { isErrno } from '../../lib/kernel/include/errno.js';
import { scratchDir } from '../lib/scratch.js';
import { fillRandom, firstDiff, rng } from './helpers.js';

const MiB = 1 << 20;

t.test('fsync sends FLUSH to the store, and the data is in the file when fsync returns', async (t) => {
  const dir = scratchDir(t, 'blk-flush');
  const img = path.join(dir, 'disk.img');
  fs.writeFileSync(img, new Uint8Array(8 * MiB));
  const store = new FaultyStore(await FileStore.open(img));
  const k = await startKernel({ memMiB: 32 });
  t.ok(await k.diskAdd({ store }) >= 0);
  const fd = await k.sys.open('/dev/vda', O_RDWR);
  const data = fillRandom(new Uint8Array(300 * 1024), rng(7));
  t.equal(await k.sys.pwrite64(fd, data, 12345), data.length);
  const before = store.counts.flush;
  const inFileBefore = firstDiff(fs.readFileSync(img).subarray(12345, 12345 + data.length), data) === -1;
  t.comment(`before fsync the file ${inFileBefore ? 'already has' : 'does not have'} the data (write-back cache)`);
  t.equal(await k.sys.fsync(fd), 0, 'fsync');
  t.ok(store.counts.flush > before, `FLUSH reached the store (${store.counts.flush - before})`);
  t.equal(firstDiff(fs.readFileSync(img).subarray(12345, 12345 + data.length), data), -1, 'the data is in the file');
  const f2 = store.counts.flush;
  t.equal(await k.sys.fdatasync(fd), 0, 'fdatasync with nothing dirty');
  t.ok(store.counts.flush > f2, 'fdatasync flushes too');

  /* PREFLUSH|FUA write bio: FLUSH, data, FLUSH; an empty flush: one FLUSH */
  await runAsInit('flush-seq', async () => {
    const bdev = bdevByName('vda')!;
    const f0 = store.counts.flush, w0 = store.counts.write;
    const page = alloc_page()!;
    page.data.fill(0x77);
    const bio = bio_alloc(bdev, REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA, 8);
    bio.addPage(page, 4096, 0);
    await submit_bio_wait(bio);
    t.equal(store.counts.flush - f0, 2, 'PREFLUSH|FUA write: a flush before and after');
    t.ok(store.counts.write > w0, 'and the write');
    await blkdev_issue_flush(bdev);
    t.equal(store.counts.flush - f0, 3, 'blkdev_issue_flush: one FLUSH');
    put_page(page);
  });
  t.equal(firstDiff(fs.readFileSync(img).subarray(4096, 8192), new Uint8Array(4096).fill(0x77)), -1, 'FUA data in the file');
  await k.sys.close(fd);
  await k.halt();
});

t.test('host I/O errors reach the caller as EIO; nothing crashes', async (t) => {
  const mem = new MemoryStore(4 * MiB);
  fillRandom(mem.data, rng(3));
  const model = mem.data.slice();
  const store = new FaultyStore(mem);
  const messages: string[] = [];
  const k = await startKernel({ memMiB: 32, print: (m) => messages.push(m) });
  t.ok(await k.diskAdd({ store }) >= 0);
  const fd = await k.sys.open('/dev/vda', O_RDWR);
  const bad = 1 * MiB + 8192;
  store.addFault({ op: 'read', pos: bad, len: 512 });
  const buf = new Uint8Array(16384);
  t.equal(await k.sys.pread64(fd, buf, bad), -EIO, 'read starting on a bad sector: EIO');
  t.equal(await k.sys.pread64(fd, buf, bad - 4096), 4096, 'read running into it: short, up to the bad page');
  t.equal(await k.sys.pread64(fd, buf, bad + 65536), buf.length, 'read elsewhere works');
  t.same(buf, model.subarray(bad + 65536, bad + 65536 + buf.length));
  t.equal(await k.sys.pread64(fd, buf, bad - 65536 - 16384), buf.length, 'read just before, through read-ahead that hit the bad sector');
  store.clearFaults();
  t.equal(await k.sys.pread64(fd, buf, bad - 4096), buf.length, 'after the fault clears, the same read works');
  t.same(buf, model.subarray(bad - 4096, bad - 4096 + buf.length));

  store.addFault({ op: 'write', pos: 2 * MiB, len: 1 });
  const w = new Uint8Array(8192).fill(1);
  t.equal(await k.sys.pwrite64(fd, w, 2 * MiB - 4096), 8192, 'the write itself lands in the cache');
  t.equal(await k.sys.fsync(fd), -EIO, 'fsync reports the failed write');
  t.equal(await k.sys.fsync(fd), 0, 'and only once');
  store.addFault({ op: 'flush' });
  t.equal(await k.sys.fsync(fd), -EIO, 'a failed FLUSH is EIO');
  store.clearFaults();
  t.equal(await k.sys.fsync(fd), 0);

  await runAsInit('bio-errors', async () => {
    const bdev = bdevByName('vda')!;
    const page = alloc_page()!;
    store.addFault({ op: 'read', pos: 0, len: 1 });
    const bio = bio_alloc(bdev, REQ_OP_READ, 0);
    bio.addPage(page, 4096, 0);
    try { await submit_bio_wait(bio); t.fail('no error'); } catch (e) { t.ok(isErrno(e) && e.errno === EIO, 'submit_bio_wait: EIO'); }
    store.clearFaults();
    const beyond = bio_alloc(bdev, REQ_OP_READ, 4 * MiB / 512 - 4);
    beyond.addPage(page, 4096, 0);
    try { await submit_bio_wait(beyond); t.fail('no error'); } catch (e) { t.ok(isErrno(e) && e.errno === EIO, 'beyond the end: EIO'); }
    put_page(page);
  });
  t.ok(messages.some((m) => /beyond end of device/.test(m)), 'the kernel says why');
  t.equal(await k.sys.close(fd), 0);
  await k.halt();
});

t.test('a read-only disk is never written', async (t) => {
  const dir = scratchDir(t, 'blk-ro');
  const img = path.join(dir, 'ro.img');
  fs.writeFileSync(img, fillRandom(new Uint8Array(4 * MiB), rng(11)));
  const past = new Date(Date.now() - 3600e3);
  fs.utimesSync(img, past, past);
  const sha = () => crypto.createHash('sha256').update(fs.readFileSync(img)).digest('hex');
  const sum0 = sha(), mtime0 = fs.statSync(img).mtimeMs;

  const k = await startKernel({ memMiB: 32 });
  t.ok(await k.diskAdd({ path: img, readOnly: true }) >= 0);
  const fd = await k.sys.open('/dev/vda', O_RDWR);
  t.ok(fd >= 0, 'O_RDWR open of a read-only device works, as on Linux');
  const buf = new Uint8Array(65536).fill(9);
  t.equal(await k.sys.pwrite64(fd, buf, 0), -EPERM, 'write(2): EPERM');
  t.equal(await k.sys.pwrite64(fd, buf, 1 << 20), -EPERM);
  t.equal(await k.sys.fsync(fd), 0, 'fsync: nothing to do');
  t.equal(await k.sys.pread64(fd, buf, 0), buf.length, 'reads work');
  t.equal(firstDiff(buf, fs.readFileSync(img).subarray(0, buf.length)), -1);
  const wfd = await k.sys.open('/dev/vda', O_WRONLY);
  t.equal(await k.sys.pwrite64(wfd, buf, 4096), -EPERM);
  await k.sys.close(wfd);

  await runAsInit('ro', async () => {
    const bdev = bdevByName('vda')!;
    t.ok(bdev.bd_read_only);
    const page = alloc_page()!;
    const bio = bio_alloc(bdev, REQ_OP_WRITE, 0);
    bio.addPage(page, 4096, 0);
    try { await submit_bio_wait(bio); t.fail('write bio went through'); } catch (e) { t.ok(isErrno(e) && e.errno === EIO, 'a write bio fails with EIO'); }
    put_page(page);
    try { await blkdev_get_for_super(bdev, 0, {}); t.fail('rw mount allowed'); } catch (e) { t.ok(isErrno(e) && e.errno === EACCES, 'read-write mount: EACCES'); }
    const b = await blkdev_get_for_super(bdev, 1 /* SB_RDONLY */, 'ro-holder');
    await set_blocksize(b, 1024);
    t.equal(b.bd_block_size, 1024);
  });
  const rfd = await k.sys.open('/dev/vda', O_RDONLY);
  t.equal(await k.sys.pread64(rfd, buf, 8192), buf.length);
  await k.sys.close(rfd);
  await k.sys.close(fd);
  await k.halt();
  t.equal(sha(), sum0, 'the image bytes are unchanged');
  t.equal(fs.statSync(img).mtimeMs, mtime0, 'and so is its mtime');
});
