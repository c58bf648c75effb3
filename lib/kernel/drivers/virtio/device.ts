/*
 * The door between the kernel and a host-side virtio device. The kernel owns this
 * interface; the host implements it (lib/drivers/virtio-*.ts) and registers the device.
 * Everything a device does to the kernel goes through shared physical memory and the
 * IRQ it raises, so a device can run in another thread unchanged.
 */

/** One used-ring entry: the head of a completed chain and the bytes written into it. */
export interface VirtioUsedElem {
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
export type VirtioIrqData = VirtioUsedElem[];

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
