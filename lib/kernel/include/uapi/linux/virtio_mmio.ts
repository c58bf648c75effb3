/*
 * The virtio-mmio register file (include/uapi/linux/virtio_mmio.h; virtio 1.x 4.2.2).
 * Shared by the kernel's drivers and the host's devices; pure data, imports nothing but
 * its sibling uapi headers.
 */
/* 4.2.2 MMIO Device Register Layout */
export const VIRTIO_MMIO_MAGIC = 0x74726976;  /* "virt", little-endian */
export const VIRTIO_MMIO_VERSION_MODERN = 2;  /* 0x1 is the legacy interface */
/** lkl-ts's vendor ID: "LKL\0". The spec leaves vendor IDs to the implementation. */
export const VIRTIO_VENDOR_LKL = 0x004c4b4c;

export const VIRTIO_MMIO_MAGIC_VALUE = 0x000;        /* R */
export const VIRTIO_MMIO_VERSION = 0x004;            /* R */
export const VIRTIO_MMIO_DEVICE_ID = 0x008;          /* R */
export const VIRTIO_MMIO_VENDOR_ID = 0x00c;          /* R */
export const VIRTIO_MMIO_DEVICE_FEATURES = 0x010;    /* R: window DeviceFeaturesSel */
export const VIRTIO_MMIO_DEVICE_FEATURES_SEL = 0x014; /* W */
export const VIRTIO_MMIO_DRIVER_FEATURES = 0x020;    /* W: window DriverFeaturesSel */
export const VIRTIO_MMIO_DRIVER_FEATURES_SEL = 0x024; /* W */
export const VIRTIO_MMIO_QUEUE_SEL = 0x030;          /* W */
export const VIRTIO_MMIO_QUEUE_NUM_MAX = 0x034;      /* R: 0 = queue unavailable */
export const VIRTIO_MMIO_QUEUE_NUM = 0x038;          /* W */
export const VIRTIO_MMIO_QUEUE_READY = 0x044;        /* RW */
export const VIRTIO_MMIO_QUEUE_NOTIFY = 0x050;       /* W: queue index */
export const VIRTIO_MMIO_INTERRUPT_STATUS = 0x060;   /* R */
export const VIRTIO_MMIO_INTERRUPT_ACK = 0x064;      /* W */
export const VIRTIO_MMIO_STATUS = 0x070;             /* RW: writing 0 resets */
export const VIRTIO_MMIO_QUEUE_DESC_LOW = 0x080;     /* W */
export const VIRTIO_MMIO_QUEUE_DESC_HIGH = 0x084;    /* W */
export const VIRTIO_MMIO_QUEUE_DRIVER_LOW = 0x090;   /* W: the avail ring */
export const VIRTIO_MMIO_QUEUE_DRIVER_HIGH = 0x094;  /* W */
export const VIRTIO_MMIO_QUEUE_DEVICE_LOW = 0x0a0;   /* W: the used ring */
export const VIRTIO_MMIO_QUEUE_DEVICE_HIGH = 0x0a4;  /* W */
export const VIRTIO_MMIO_SHM_SEL = 0x0ac;            /* W (1.2) */
export const VIRTIO_MMIO_SHM_LEN_LOW = 0x0b0;        /* R (1.2) */
export const VIRTIO_MMIO_SHM_LEN_HIGH = 0x0b4;
export const VIRTIO_MMIO_SHM_BASE_LOW = 0x0b8;
export const VIRTIO_MMIO_SHM_BASE_HIGH = 0x0bc;
export const VIRTIO_MMIO_QUEUE_RESET = 0x0c0;        /* RW (1.2, VIRTIO_F_RING_RESET) */
export const VIRTIO_MMIO_CONFIG_GENERATION = 0x0fc;  /* R */
export const VIRTIO_MMIO_CONFIG = 0x100;             /* device-specific configuration */

/* 4.2.2 InterruptStatus bits */
export const VIRTIO_MMIO_INT_VRING = 1;    /* Used Buffer Notification */
export const VIRTIO_MMIO_INT_CONFIG = 2;   /* Configuration Change Notification */
