/*
 * Reading /dev/fuse without stalling the event loop, which the lkl-ts kernel needs for its
 * device completions and timers. Two ways, both handing whole frames (one request each) to
 * the caller on the main thread, in the order the kernel queued them:
 *
 *  - 'poll': the descriptor in non-blocking mode, watched by libuv's epoll through Node's
 *    internal pipe_wrap binding (net.Socket refuses character devices), reading straight
 *    into one buffer of max_write + 4 KiB (useUserBuffer). No thread hand-off at all: the
 *    request is read, decoded and started in the same turn of the event loop. The binding
 *    is internal; if a Node version lacks it, 'worker' is used.
 *  - 'worker': a worker thread doing blocking reads into a ring of SharedArrayBuffer slots,
 *    the main thread woken with Atomics.waitAsync (one hand-off per wake-up; a burst of
 *    requests is drained in one).
 *
 * A pending fs.read on the libuv thread pool is not offered: each one ties up a pool thread
 * for as long as the connection is idle, and with as many of them as pool threads every
 * other asynchronous file operation (the image's I/O) stalls.
 *
 * Measured here with `node dist/scripts/fuse-stat-bench.js` (stat() of one file in a loop
 * from another process, entry_timeout=0,attr_timeout=0 so every stat is a LOOKUP and a
 * GETATTR answered by the daemon; ext4 image, the real lkl-ts kernel; 2 vCPUs shared with
 * other work, so the figures move with the load; best of 3 runs of 3 s), 2026-12-02:
 *
 *                      load ~1.6            load ~3.5
 *                  1 caller  2 callers  1 caller  2 callers   (stat/s)
 *   fuse-native     10,633    13,467     14,600    15,033
 *   kernel, poll    21,367    21,433     17,100    17,400     (23-29 µs per request)
 *   kernel, worker  12,400    15,700     12,900    16,967
 *
 * The daemon's own time per request (frame read to reply written) is ~9.5 µs with 'poll',
 * most of it the lkl-ts kernel's system call (~5 µs for a newfstatat). 'poll' is the
 * default; 'worker' is the fallback for a Node without pipe_wrap (-o reader=worker).
 */
import { Worker } from 'node:worker_threads';
import createDebug from 'debug';

const debug = createDebug('lkl:fuse:kernel');

export type ReaderKind = 'poll' | 'worker';

export interface DevReader {
  readonly kind: ReaderKind;
  /** Starts delivering frames; `onEnd` once the connection is gone (ENODEV) or reading failed. */
  start(onFrame: (frame: Buffer) => void, onEnd: (errno: number) => void): void;
  /** Stops reading (frames in flight may still be delivered before it returns). */
  stop(): void;
}

interface PipeHandle {
  open(fd: number): number;
  readStart(): number;
  readStop(): number;
  close(cb?: () => void): void;
  useUserBuffer(b: Uint8Array): void;
  onread: (ab?: ArrayBuffer) => void;
}
interface PipeBinding { Pipe: new (type: number) => PipeHandle; constants: { SOCKET: number } }
interface StreamBinding { streamBaseState: Int32Array; kReadBytesOrError: number }

function pipeBinding(): { pipe: PipeBinding; stream: StreamBinding } | null {
  try {
    const b = (process as unknown as { binding(n: string): unknown }).binding;
    const pipe = b('pipe_wrap') as PipeBinding, stream = b('stream_wrap') as StreamBinding;
    if (typeof pipe.Pipe !== 'function' || !stream.streamBaseState) return null;
    if (typeof (pipe.Pipe.prototype as Partial<PipeHandle>).useUserBuffer !== 'function') return null;
    return { pipe, stream };
  } catch { return null; }
}

/** Whether the 'poll' reader can work in this Node. */
export const pollAvailable = () => pipeBinding() !== null;

class PollReader implements DevReader {
  readonly kind = 'poll' as const;
  private handle: PipeHandle | null = null;
  constructor(private readonly fd: number, private readonly bufSize: number) {}

  start(onFrame: (frame: Buffer) => void, onEnd: (errno: number) => void): void {
    const b = pipeBinding()!;
    const h = new b.pipe.Pipe(b.pipe.constants.SOCKET);
    const err = h.open(this.fd);
    if (err) { onEnd(err); return; }
    const buf = Buffer.allocUnsafe(this.bufSize);
    h.useUserBuffer(buf);
    const state = b.stream.streamBaseState, k = b.stream.kReadBytesOrError;
    h.onread = () => {
      const n = state[k]!;
      if (n > 0) {
        // The buffer is reused by the next read: the frame gets its own copy.
        onFrame(Buffer.from(buf.subarray(0, n)));
      } else if (n < 0) {
        // libuv retries EAGAIN itself; EINTR/ENOENT (an aborted request) are not the end.
        if (n === -4 || n === -2 || n === -11) return;
        debug('poll reader: read ended %d', n);
        this.stop();
        onEnd(n === -4095 /* UV_EOF */ ? -19 : n);
      }
    };
    this.handle = h;
    const r = h.readStart();
    if (r) { this.stop(); onEnd(r); }
  }

  stop(): void {
    const h = this.handle;
    if (!h) return;
    this.handle = null;
    h.readStop();
    // Closing the handle would close the descriptor too; the transport owns it.
  }
}

class WorkerReader implements DevReader {
  readonly kind = 'worker' as const;
  private worker: Worker | null = null;
  private stopped = false;
  constructor(private readonly fd: number, private readonly bufSize: number, private readonly slots = 8) {}

  start(onFrame: (frame: Buffer) => void, onEnd: (errno: number) => void): void {
    const ctrlBuf = new SharedArrayBuffer(4 * (2 + this.slots));
    const data = new SharedArrayBuffer(this.slots * this.bufSize);
    const ctrl = new Int32Array(ctrlBuf);
    this.worker = new Worker(new URL('./dev-reader-worker.js', import.meta.url), {
      workerData: { fd: this.fd, ctrl: ctrlBuf, data, slots: this.slots, slotSize: this.bufSize },
    });
    this.worker.on('error', (e) => { debug('reader worker: %O', e); if (!this.stopped) { this.stopped = true; onEnd(-5); } });
    const loop = async () => {
      let tail = 0;
      for (;;) {
        const head = Atomics.load(ctrl, 0);
        while (tail < head) {
          const slot = tail % this.slots;
          const n = Atomics.load(ctrl, 2 + slot);
          const frame = n > 0 ? Buffer.from(new Uint8Array(data, slot * this.bufSize, n)) : null;
          tail++;
          Atomics.store(ctrl, 1, tail);
          Atomics.notify(ctrl, 1);
          if (this.stopped) return;
          if (!frame) { this.stopped = true; onEnd(n); return; }
          onFrame(frame);
        }
        const w = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync(ctrl, 0, head);
        if (w.async) await w.value;
        if (this.stopped) return;
      }
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    // A worker blocked in read(2) cannot be woken; it ends with the connection (ENODEV).
    this.worker?.unref();
  }
}

/**
 * Busy polling after a reply (as the networking stack's busy_poll): for `windowUs` after
 * the last reply the event loop is kept from blocking (a setImmediate callback per turn, so
 * libuv polls with a zero timeout), and a request that follows at once is read without
 * waking the thread from sleep. The caller of a FUSE request sleeps until its reply and
 * sends the next right after; a thread that went to sleep in between is woken through the
 * host's scheduler, on a virtual machine ~40 µs (measured here, 2 vCPUs: one caller's
 * stat() rate 8,700/s without, 15,800/s with a 100 µs window; a find over 66,000
 * directories 19.5 s -> 14.7 s). The cost is CPU for at most the window after each reply;
 * an idle mount costs nothing. 0 turns it off.
 */
export class BusyPoll {
  private last = 0;
  private spinning = false;
  /** Turns of the event loop spent polling (for tests). */
  turns = 0;
  constructor(private readonly windowUs: number) {}
  get active(): boolean { return this.spinning; }
  /** A reply was sent: poll for the window from now. */
  kick(): void {
    if (this.windowUs <= 0) return;
    this.last = performance.now();
    if (this.spinning) return;
    this.spinning = true;
    setImmediate(this.spin);
  }
  private spin = (): void => {
    this.turns++;
    if ((performance.now() - this.last) * 1000 < this.windowUs) setImmediate(this.spin);
    else this.spinning = false;
  };
}

export function makeReader(kind: ReaderKind, fd: number, bufSize: number): DevReader {
  if (kind === 'poll' && pollAvailable()) return new PollReader(fd, bufSize);
  return new WorkerReader(fd, bufSize);
}
