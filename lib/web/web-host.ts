/*
 * The browser implementation of HostOps (LKL's posix-host.c, for a web page): printk to a
 * callback (the page's log panel), promise semaphores, kernel threads as microtasks, timers
 * on setTimeout, time from performance.now(), and physical memory as a SharedArrayBuffer
 * when the page is cross-origin isolated (an ArrayBuffer otherwise).
 *
 * No blocking waits are needed: the kernel's idle thread sleeps on a semaphore whose down()
 * is a promise, so the kernel runs on the page's own thread (no Atomics.wait, which the main
 * thread may not use) and every disk read yields to the event loop.
 */
import type { HostOps, HostSemaphore, HostTimer } from '../kernel/host-ops.js';

class WebSemaphore implements HostSemaphore {
  private waiters: Array<() => void> = [];
  constructor(private count: number) {}
  up(): void {
    const w = this.waiters.shift();
    if (w) w(); else this.count++;
  }
  down(): Promise<void> {
    if (this.count > 0) { this.count--; return Promise.resolve(); }
    return new Promise((res) => this.waiters.push(res));
  }
}

class WebTimer implements HostTimer {
  private handle: ReturnType<typeof setTimeout> | null = null;
  constructor(private readonly fn: () => void) {}
  set(deltaNs: number): void {
    this.cancel();
    /* millisecond resolution; never early (the kernel re-arms if it is) */
    this.handle = setTimeout(() => { this.handle = null; this.fn(); }, Math.ceil(deltaNs / 1e6));
  }
  cancel(): void {
    if (this.handle !== null) { clearTimeout(this.handle); this.handle = null; }
  }
}

export interface WebHostOptions {
  /** Kernel messages, one per call. */
  print(msg: string): void;
  /** Debug namespaces to show through print, as DEBUG patterns ("lkl:virtio:*"). */
  debug?: string;
}

/** Whether a namespace matches a DEBUG-style list ("a:*,b,-c"). */
export function debugEnabled(patterns: string, ns: string): boolean {
  let on = false;
  for (const raw of patterns.split(/[\s,]+/)) {
    if (!raw) continue;
    const neg = raw.startsWith('-');
    const p = neg ? raw.slice(1) : raw;
    const re = new RegExp('^' + p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
    if (re.test(ns)) on = !neg;
  }
  return on;
}

/** printf-style formatting of the %s/%d/%o/%O/%j forms debug messages use. */
export function formatMessage(fmt: string, args: unknown[]): string {
  let i = 0;
  const out = fmt.replace(/%([sdifoOjx%])/g, (m, c: string) => {
    if (c === '%') return '%';
    if (i >= args.length) return m;
    const a = args[i++];
    switch (c) {
      case 'd': case 'i': return String(typeof a === 'bigint' ? a : Math.trunc(Number(a)));
      case 'f': return String(Number(a));
      case 'x': return Number(a).toString(16);
      case 'o': case 'O': case 'j':
        try { return typeof a === 'string' ? a : JSON.stringify(a, (_k, v) => typeof v === 'bigint' ? v.toString() : v); } catch { return String(a); }
      default: return String(a);
    }
  });
  return args.length > i ? `${out} ${args.slice(i).map(String).join(' ')}` : out;
}

export function createWebHost(opts: WebHostOptions): HostOps {
  const t0 = performance.now();
  const print = opts.print;
  return {
    print,
    panic(msg: string): never {
      print(`kernel panic: ${msg}`);
      throw new Error(`kernel panic: ${msg}`);
    },
    semAlloc: (count) => new WebSemaphore(count),
    threadCreate: (fn) => queueMicrotask(fn),
    memAlloc: (bytes) => (globalThis.crossOriginIsolated ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes)),
    monotonicNs: () => Math.round((performance.now() - t0) * 1e6),
    realtime: () => {
      const ms = performance.timeOrigin + performance.now();
      const sec = Math.floor(ms / 1000);
      return [sec, Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6))];
    },
    timerAlloc: (fn) => new WebTimer(fn),
    timerFree: (t) => t.cancel(),
    debug(ns: string) {
      if (!opts.debug || !debugEnabled(opts.debug, ns)) return undefined;
      return (m: string) => print(`${ns} ${m}`);
    },
  };
}
