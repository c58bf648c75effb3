/*
 * The Node.js implementation of HostOps (LKL's tools/lkl/lib/posix-host.c).
 * Everything the kernel does to the outside world on Node goes through here.
 */
import createDebug from 'debug';
import type { HostOps, HostSemaphore, HostTimer, VirtioMmioDevice } from '../kernel/host-ops.js';

class NodeSemaphore implements HostSemaphore {
  private count: number;
  private waiters: Array<() => void> = [];
  constructor(count: number) { this.count = count; }
  up(): void {
    const w = this.waiters.shift();
    if (w) w(); else this.count++;
  }
  down(): Promise<void> {
    if (this.count > 0) { this.count--; return Promise.resolve(); }
    return new Promise((res) => this.waiters.push(res));
  }
}

class NodeTimer implements HostTimer {
  private handle: NodeJS.Timeout | null = null;
  constructor(private readonly fn: () => void) {}
  set(deltaNs: number): void {
    this.cancel();
    // setTimeout has millisecond resolution; never fire early (kernel re-arms if it did).
    this.handle = setTimeout(() => { this.handle = null; this.fn(); }, Math.ceil(deltaNs / 1e6));
  }
  cancel(): void {
    if (this.handle) { clearTimeout(this.handle); this.handle = null; }
  }
}

export interface NodeHostOptions {
  /** Where kernel messages go (default: stderr when DEBUG enables lkl:kernel, else kept quiet). */
  print?: (msg: string, level?: number) => void;
  virtioDevices?: VirtioMmioDevice[];
}

const printk = createDebug('lkl:kernel');

export function createNodeHost(opts: NodeHostOptions = {}): HostOps {
  const t0 = process.hrtime.bigint();
  const debugs = new Map<string, ((m: string) => void) | undefined>();
  return {
    print: opts.print ?? ((msg) => printk(msg)),
    panic(msg: string): never {
      process.stderr.write(`lkl-ts: kernel panic: ${msg}\n`);
      throw new Error(`kernel panic: ${msg}`);
    },
    semAlloc: (count) => new NodeSemaphore(count),
    threadCreate: (fn) => queueMicrotask(fn),
    memAlloc: (bytes) => new SharedArrayBuffer(bytes),
    monotonicNs: () => Number(process.hrtime.bigint() - t0),
    realtime: () => {
      // hrtime is monotonic; anchor it once to Date for the epoch, at ms precision.
      const ms = Date.now();
      const ns = Number(process.hrtime.bigint() % 1_000_000n);
      return [Math.floor(ms / 1000), (ms % 1000) * 1e6 + ns];
    },
    timerAlloc: (fn) => new NodeTimer(fn),
    timerFree: (t) => t.cancel(),
    virtioDevices: opts.virtioDevices,
    debug(ns: string) {
      if (!debugs.has(ns)) {
        const d = createDebug(ns);
        debugs.set(ns, d.enabled ? (m: string) => d(m) : undefined);
      }
      return debugs.get(ns);
    },
  };
}
