/*
 * The kernel's only door to the outside world (LKL's struct lkl_host_operations).
 * Everything the kernel needs from its environment goes through one object of this type,
 * handed to the kernel at boot. A Node host lives in lib/drivers/node-host.ts; a browser
 * host would implement the same members. The kernel never imports node:* or npm packages.
 */
import type { VirtioMmioDevice } from './drivers/virtio/device.js';

/** A counting semaphore provided by the host (the idle thread sleeps on one). */
export interface HostSemaphore {
  /** Increment; wakes one waiter if any. Callable from anywhere, any number of times. */
  up(): void;
  /** Resolves once the count could be decremented. Only host-side code awaits this. */
  down(): Promise<void>;
}

/** A one-shot host timer; its callback runs in host context and must only raise an IRQ. */
export interface HostTimer {
  /** (Re)arm to fire once after `deltaNs` nanoseconds; replaces any previous arming. */
  set(deltaNs: number): void;
  /** Disarm; after this, the callback does not run until set again. */
  cancel(): void;
}

export interface HostOps {
  /** Console output (printk ends here). One call per message, without trailing newline. */
  print(msg: string): void;
  /** Unrecoverable kernel error. Must not return. */
  panic(msg: string): never;
  /** A new host semaphore with the given initial count. */
  semAlloc(count: number): HostSemaphore;
  /**
   * Start a host task that runs a kernel thread's body. The host must not run `fn`
   * synchronously inside this call (the caller holds the CPU token and expects to go on).
   */
  threadCreate(fn: () => void): void;
  /** Physical memory: one SharedArrayBuffer of `bytes` bytes (devices see the same buffer). */
  memAlloc(bytes: number): SharedArrayBuffer;
  /** Monotonic time in nanoseconds since an arbitrary host epoch (a double). */
  monotonicNs(): number;
  /** Wall-clock time as [seconds, nanoseconds] since the Unix epoch. */
  realtime(): [number, number];
  /** A host one-shot timer that calls `fn` (in host context) when it fires. */
  timerAlloc(fn: () => void): HostTimer;
  /** Release a timer: it never fires again and holds no host handle (lets the process exit). */
  timerFree(t: HostTimer): void;
  /** Devices present at boot (more can be hot-added through the public API). */
  virtioDevices?: VirtioMmioDevice[];
  /**
   * Optional debug channel per subsystem namespace (e.g. "lkl:arch:irq"): returns a
   * logger, or undefined when that namespace is disabled, so callers skip formatting.
   */
  debug?(namespace: string): ((msg: string) => void) | undefined;
}
