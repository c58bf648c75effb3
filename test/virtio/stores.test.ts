/* Backing stores: FileStore (path and fd, read-only), MemoryStore, FaultyStore. */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FaultyStore, FileStore, MemoryStore } from '../../lib/drivers/stores.js';

t.test('FileStore: positional I/O into shared memory, short reads are zeros', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'img');
  const content = randomBytes(10000);
  fs.writeFileSync(file, content);
  const s = await FileStore.open(file);
  t.equal(s.size, 10000);
  t.equal(s.readOnly, false);
  const mem = new Uint8Array(new SharedArrayBuffer(65536));
  const buf = mem.subarray(4096, 4096 + 4096);
  await s.read(buf, 8192);  /* 1808 bytes of file, then past EOF */
  t.same(Buffer.from(buf.subarray(0, 1808)), content.subarray(8192));
  t.ok(buf.subarray(1808).every((b) => b === 0), 'past EOF reads zeros');
  const w = mem.subarray(100, 100 + 3000);
  w.set(randomBytes(3000));
  await s.write(w, 20000);  /* extends the file */
  await s.flush();
  await s.close();
  const after = fs.readFileSync(file);
  t.equal(after.length, 23000);
  t.same(after.subarray(20000), Buffer.from(w));
  t.same(after.subarray(0, 10000), content);
  await t.rejects(s.read(buf, 0), { code: 'EBADF' }, 'closed store');
});

t.test('FileStore read-only: write rejects with EROFS, file untouched', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'ro.img');
  const content = randomBytes(4096);
  fs.writeFileSync(file, content);
  const s = await FileStore.open(file, { readOnly: true });
  t.equal(s.readOnly, true);
  await t.rejects(s.write(new Uint8Array(512), 0), { code: 'EROFS', errno: -30 });
  await s.flush();
  await s.close();
  t.same(fs.readFileSync(file), content);
});

t.test('FileStore from an fd: the fd stays open', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'fd.img');
  fs.writeFileSync(file, Buffer.alloc(2048, 7));
  const fd = fs.openSync(file, 'r+');
  const s = await FileStore.open(fd);
  t.equal(s.size, 2048);
  await s.write(new Uint8Array(512).fill(9), 512);
  const b = new Uint8Array(1024);
  await s.read(b, 0);
  t.ok(b.subarray(0, 512).every((x) => x === 7) && b.subarray(512).every((x) => x === 9));
  await s.close();
  t.ok(fs.fstatSync(fd).isFile(), 'caller fd still open');
  fs.closeSync(fd);
  const big = await FileStore.open(file, { size: 1 << 20, readOnly: true });
  t.equal(big.size, 1 << 20, 'size override');
  await big.close();
});

t.test('FileStore.open of a missing file rejects', async (t) => {
  await t.rejects(FileStore.open('/nonexistent/x.img'), { code: 'ENOENT' });
});

t.test('MemoryStore', async (t) => {
  const s = new MemoryStore(4096);
  await s.write(new Uint8Array(512).fill(1), 1024);
  const b = new Uint8Array(1024);
  await s.read(b, 3584);  /* 512 in range, 512 past the end */
  t.ok(b.every((x) => x === 0));
  await s.read(b, 512);
  t.ok(b.subarray(512).every((x) => x === 1));
  await s.discard!(1024, 256);
  t.ok(s.data.subarray(1024, 1280).every((x) => x === 0));
  t.ok(s.data.subarray(1280, 1536).every((x) => x === 1));
  await t.rejects(s.write(new Uint8Array(512), 4000), { code: 'EIO' });
  const ro = new MemoryStore(new Uint8Array(1024), { readOnly: true });
  await t.rejects(ro.write(new Uint8Array(1), 0), { code: 'EROFS' });
  await t.rejects(ro.writeZeroes!(0, 1), { code: 'EROFS' });
});

t.test('FaultyStore: faults by op and range, counts, delays', async (t) => {
  const inner = new MemoryStore(1 << 16);
  const order: number[] = [];
  const s = new FaultyStore(inner, {
    faults: [{ op: 'read', pos: 8192, len: 512 }, { op: 'write', times: 1 }],
    delay: (op, pos) => (op === 'read' && pos === 0 ? 30 : 0),
  });
  t.equal(s.size, 1 << 16);
  t.type(s.discard, 'function', 'discard passes through when the inner store has it');
  await t.rejects(s.write(new Uint8Array(512), 0), { code: 'EIO' }, 'first write fails');
  await s.write(new Uint8Array(512).fill(3), 0);
  t.equal(inner.data[0], 3, 'second write passes');
  await t.rejects(s.read(new Uint8Array(512), 8192 + 511), { code: 'EIO' }, 'overlapping read fails');
  await s.read(new Uint8Array(512), 8192 + 512);
  await s.read(new Uint8Array(512), 8192 - 512);
  const slow = s.read(new Uint8Array(512), 0).then(() => order.push(0));
  const fast = s.read(new Uint8Array(512), 512).then(() => order.push(1));
  await Promise.all([slow, fast]);
  t.same(order, [1, 0], 'delayed operation completes later');
  await s.flush();
  await s.flush();
  t.equal(s.flushes, 2);
  t.equal(s.counts.write, 2);
  s.clearFaults();
  await s.read(new Uint8Array(512), 8192);
  const noDiscard = new FaultyStore(await FileStore.open(process.execPath, { readOnly: true }));
  t.equal(noDiscard.discard, undefined, 'no discard when the inner store has none');
  await noDiscard.close();
});
