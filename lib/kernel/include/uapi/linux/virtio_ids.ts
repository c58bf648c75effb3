/*
 * Virtio device types (include/uapi/linux/virtio_ids.h; virtio 1.x 5).
 * Shared by the kernel's drivers and the host's devices; pure data, imports nothing but
 * its sibling uapi headers.
 */
/* 5 Device Types */
export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;
