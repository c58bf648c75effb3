/*
 * Virtio device status and feature bits (include/uapi/linux/virtio_config.h; virtio 1.x 2.1, 6).
 * Feature sets are bigints: VIRTIO_F_VERSION_1 is bit 32, past what a number's bit operators
 * reach, and negotiation happens once per device.
 * Shared by the kernel's drivers and the host's devices; pure data, imports nothing but
 * its sibling uapi headers.
 */
/* 2.1 Device Status Field */
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
export const VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET = 64;
export const VIRTIO_CONFIG_S_FAILED = 128;

/* 6 Reserved Feature Bits (device-independent, 28..41) */
export const VIRTIO_F_INDIRECT_DESC = 28;      /* 2.7.5.3 indirect descriptor tables */
export const VIRTIO_F_RING_EVENT_IDX = 29;     /* 2.7.7 / 2.7.10 used_event, avail_event */
export const VIRTIO_F_VERSION_1 = 32;          /* compliant with this specification */
export const VIRTIO_F_ACCESS_PLATFORM = 33;
export const VIRTIO_F_RING_PACKED = 34;        /* 2.8 packed virtqueues */
export const VIRTIO_F_IN_ORDER = 35;           /* buffers used in the order made available */
export const VIRTIO_F_ORDER_PLATFORM = 36;
export const VIRTIO_F_SR_IOV = 37;
export const VIRTIO_F_NOTIFICATION_DATA = 38;
export const VIRTIO_F_NOTIF_CONFIG_DATA = 39;
export const VIRTIO_F_RING_RESET = 40;

/** The feature set with the given bits set. */
export function features(...bits: number[]): bigint {
  let f = 0n;
  for (const b of bits) f |= 1n << BigInt(b);
  return f;
}
export function hasFeature(set: bigint, bit: number): boolean {
  return ((set >> BigInt(bit)) & 1n) === 1n;
}
/** The 32-bit window `sel` of a feature set, as DeviceFeatures/DriverFeatures show it. */
export function featureWindow(set: bigint, sel: number): number {
  return Number((set >> BigInt(32 * sel)) & 0xffffffffn);
}
