/*
 * The worker half of the 'worker' /dev/fuse reader (dev-reader.ts): blocking reads of
 * /dev/fuse into a ring of SharedArrayBuffer slots; the main thread takes them from there.
 * Only node:fs and worker_threads; it never answers anything itself.
 */
import fs from 'node:fs';
import { workerData } from 'node:worker_threads';

interface Data { fd: number; ctrl: SharedArrayBuffer; data: SharedArrayBuffer; slots: number; slotSize: number }
const { fd, ctrl: ctrlBuf, data, slots, slotSize } = workerData as Data;
const ctrl = new Int32Array(ctrlBuf);
const HEAD = 0, TAIL = 1, LEN = 2;

for (;;) {
  const head = Atomics.load(ctrl, HEAD);
  let tail = Atomics.load(ctrl, TAIL);
  while (head - tail >= slots) {
    Atomics.wait(ctrl, TAIL, tail);
    tail = Atomics.load(ctrl, TAIL);
  }
  const slot = head % slots;
  const view = new Uint8Array(data, slot * slotSize, slotSize);
  let n: number;
  try {
    n = fs.readSync(fd, view, 0, slotSize, null);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EINTR' || code === 'EAGAIN' || code === 'ENOENT') continue; // ENOENT: request aborted before we read it
    n = -((e as NodeJS.ErrnoException).errno ? Math.abs((e as NodeJS.ErrnoException).errno!) : 19);
  }
  if (n === 0) n = -19; // end of file: the connection is gone (as ENODEV)
  Atomics.store(ctrl, LEN + slot, n);
  Atomics.store(ctrl, HEAD, head + 1);
  Atomics.notify(ctrl, HEAD);
  if (n < 0) break;
}
