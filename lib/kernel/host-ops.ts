/*
 * The kernel's only door to the outside world (LKL's struct lkl_host_operations).
 * Everything the kernel needs from its environment goes through one object of this type,
 * handed to the kernel at boot. A Node host lives in lib/drivers/node-host.ts; a browser
 * host would implement the same members. The kernel never imports node:* or npm packages.
 */

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
  /**
   * Console output (printk ends here). One call per message, without trailing newline;
   * `level` is its log level (0 emerg .. 7 debug, include/linux/kern_levels.h).
   */
  print(msg: string, level?: number): void;
  /** Unrecoverable kernel error. Must not return. */
  panic(msg: string): never;
  /** A new host semaphore with the given initial count. */
  semAlloc(count: number): HostSemaphore;
  /**
   * Start a host task that runs a kernel thread's body. The host must not run `fn`
   * synchronously inside this call (the caller holds the CPU token and expects to go on).
   */
  threadCreate(fn: () => void): void;
  /**
   * Physical memory: one buffer of `bytes` bytes that devices see too. A SharedArrayBuffer
   * where the host has one (Node; a cross-origin isolated page), so a device may run in
   * another thread; a plain ArrayBuffer otherwise (devices then run in the kernel's thread).
   */
  memAlloc(bytes: number): SharedArrayBuffer | ArrayBuffer;
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

/*
 * The door between the kernel and a host-side virtio device: the host implements
 * VirtioMmioDevice (lib/drivers/virtio-*.ts) and hands it over at boot (virtio_devices) or
 * later with the virtio_mmio_device_add system call. Everything a device does to the kernel
 * goes through shared physical memory and the IRQ it raises, so a device can run in another
 * thread unchanged.
 */

/** One used-ring entry: the head of a completed chain and the bytes written into it. */
export interface vring_used_elem {
  id: number;
  len: number;
  /** The virtqueue the entry belongs to (0 for single-queue devices). */
  queue: number;
}

/**
 * What a device's IRQ carries: the used-ring entries completed since the previous IRQ,
 * in completion order (which need not be submission order). The same entries are in the
 * used ring in memory. An empty array is a configuration-change interrupt.
 */
export type VirtioIrqData = vring_used_elem[];

export interface VirtioMmioDevice {
  readonly name: string;
  /** 32-bit register read at a virtio-mmio offset (config space at >= 0x100 with byte/16/32 access by size). */
  read(offset: number, size?: 1 | 2 | 4): number;
  /** Register write (QueueNotify triggers processing). */
  write(offset: number, value: number, size?: 1 | 2 | 4): void;
  /**
   * Called once by the kernel before probing: physical memory (a Uint8Array over the
   * kernel's SharedArrayBuffer; physical address = byte offset) and the function that
   * raises this device's IRQ carrying data (a VirtioIrqData: the completed used-ring
   * entries as Array<{id, len, queue}>).
   */
  attach(mem: Uint8Array, raiseIrq: (data: unknown) => void): void;
  /** Host-side teardown: wait for in-flight I/O, close the store. */
  close(): Promise<void>;
}

/** What virtio_mmio_device_add returns: plain data about the device the kernel took. */
export interface VirtioDeviceInfo {
  /** The device's index among virtio devices (virtio0, virtio1, ...). */
  index: number;
  /** The driver that took it, or null if none matched. */
  driver: string | null;
  /** For a block device: its disk name (vda) and the partitions found on it. */
  disk?: { name: string; partitions: { partno: number; name: string }[] };
}
