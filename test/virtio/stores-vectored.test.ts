// FileStore's scatter-gather I/O: one preadv/pwritev per request, more than IOV_MAX
// buffers, and reads past the end of the file reading as zeros.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileStore } from '../../lib/drivers/stores.js';

t.test('readv/writev round trip, IOV_MAX splitting, EOF zeros', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lkl-vec-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'img');
  fs.writeFileSync(file, Buffer.alloc(3 * 1024 * 1024));
  const st = await FileStore.open(file);
  // 2,500 buffers of odd sizes (more than IOV_MAX = 1024), consecutive in the file.
  const bufs: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < 2500; i++) {
    const b = new Uint8Array(1 + (i * 37) % 700).map((_, j) => (i + j) & 0xff);
    bufs.push(b);
    total += b.length;
  }
  await st.writev(bufs, 4096);
  const flat = Buffer.concat(bufs.map((b) => Buffer.from(b)));
  const onDisk = fs.readFileSync(file).subarray(4096, 4096 + total);
  t.ok(onDisk.equals(flat), `pwritev wrote ${total} bytes from 2500 buffers in order`);
  const back = bufs.map((b) => new Uint8Array(b.length));
  await st.readv(back, 4096);
  t.ok(Buffer.concat(back.map((b) => Buffer.from(b))).equals(flat), 'preadv read them back into 2500 buffers');
  // A read running past the end of the file: the tail reads as zeros (a hole).
  const size = 3 * 1024 * 1024;
  const tail = [new Uint8Array(100).fill(0xee), new Uint8Array(5000).fill(0xee), new Uint8Array(10).fill(0xee)];
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(50, 0x11), 0, 50, size - 50);
  fs.closeSync(fd);
  await st.readv(tail, size - 50);
  t.ok(tail[0]!.subarray(0, 50).every((x) => x === 0x11), 'the bytes before EOF are the file\'s');
  t.ok(tail[0]!.subarray(50).every((x) => x === 0), 'the bytes past EOF are zeros');
  t.ok(tail[1]!.every((x) => x === 0) && tail[2]!.every((x) => x === 0), 'whole buffers past EOF are zeros');
  await st.close();
  const ro = await FileStore.open(file, { readOnly: true });
  await t.rejects(ro.writev([new Uint8Array(1)], 0), { code: 'EROFS' }, 'writev on a read-only store is EROFS');
  await ro.close();
});
