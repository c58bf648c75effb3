/*
 * Virtio constants shared by the kernel's drivers and the host's devices: device status,
 * feature bits, the virtio-mmio register file and the virtio-blk device's ABI. Numbers
 * and names are the virtio 1.x specification's (section numbers beside them), which are
 * also <linux/virtio_config.h>, <linux/virtio_mmio.h> and <linux/virtio_blk.h>.
 * Pure data and tiny helpers; imports nothing.
 *
 * Feature sets are bigints: VIRTIO_F_VERSION_1 is bit 32, past what a number's bit
 * operators reach, and negotiation happens once per device.
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

/* 5 Device Types */
export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;

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

/* 5.2.3 Block Device Feature bits */
export const VIRTIO_BLK_F_SIZE_MAX = 1;      /* size_max: largest single segment */
export const VIRTIO_BLK_F_SEG_MAX = 2;       /* seg_max: most segments in a request */
export const VIRTIO_BLK_F_GEOMETRY = 4;
export const VIRTIO_BLK_F_RO = 5;            /* device is read-only */
export const VIRTIO_BLK_F_BLK_SIZE = 6;      /* blk_size: logical block size */
export const VIRTIO_BLK_F_FLUSH = 9;         /* cache flush command */
export const VIRTIO_BLK_F_TOPOLOGY = 10;
export const VIRTIO_BLK_F_CONFIG_WCE = 11;   /* writeback mode in config */
export const VIRTIO_BLK_F_MQ = 12;
export const VIRTIO_BLK_F_DISCARD = 13;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;
export const VIRTIO_BLK_F_LIFETIME = 15;
export const VIRTIO_BLK_F_SECURE_ERASE = 16;

/* 5.2.4 Block Device Configuration Layout: struct virtio_blk_config, byte offsets */
export const VIRTIO_BLK_CFG_CAPACITY = 0;            /* le64, in 512-byte sectors */
export const VIRTIO_BLK_CFG_SIZE_MAX = 8;            /* le32 */
export const VIRTIO_BLK_CFG_SEG_MAX = 12;            /* le32 */
export const VIRTIO_BLK_CFG_GEOMETRY_CYLINDERS = 16; /* le16 */
export const VIRTIO_BLK_CFG_GEOMETRY_HEADS = 18;     /* u8 */
export const VIRTIO_BLK_CFG_GEOMETRY_SECTORS = 19;   /* u8 */
export const VIRTIO_BLK_CFG_BLK_SIZE = 20;           /* le32 */
export const VIRTIO_BLK_CFG_PHYSICAL_BLOCK_EXP = 24; /* u8, topology */
export const VIRTIO_BLK_CFG_ALIGNMENT_OFFSET = 25;   /* u8 */
export const VIRTIO_BLK_CFG_MIN_IO_SIZE = 26;        /* le16, in blocks */
export const VIRTIO_BLK_CFG_OPT_IO_SIZE = 28;        /* le32, in blocks */
export const VIRTIO_BLK_CFG_WRITEBACK = 32;          /* u8 */
export const VIRTIO_BLK_CFG_NUM_QUEUES = 34;         /* le16 (after u8 unused0) */
export const VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS = 36;      /* le32 */
export const VIRTIO_BLK_CFG_MAX_DISCARD_SEG = 40;          /* le32 */
export const VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT = 44; /* le32 */
export const VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS = 48; /* le32 */
export const VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG = 52;     /* le32 */
export const VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP = 56;   /* u8 (then u8 unused1[3]) */
export const VIRTIO_BLK_CFG_MAX_SECURE_ERASE_SECTORS = 60; /* le32 */
export const VIRTIO_BLK_CFG_MAX_SECURE_ERASE_SEG = 64;     /* le32 */
export const VIRTIO_BLK_CFG_SECURE_ERASE_SECTOR_ALIGNMENT = 68; /* le32 */
/** The configuration fields up to secure_erase_sector_alignment (zoned is not offered). */
export const VIRTIO_BLK_CFG_SIZE = 72;

/* 5.2.6 Device Operation: struct virtio_blk_req */
export const VIRTIO_BLK_SECTOR_SHIFT = 9;   /* sectors are always 512 bytes, whatever blk_size */
export const VIRTIO_BLK_SECTOR_SIZE = 512;
export const VIRTIO_BLK_REQ_TYPE = 0;       /* le32 */
export const VIRTIO_BLK_REQ_RESERVED = 4;   /* le32 */
export const VIRTIO_BLK_REQ_SECTOR = 8;     /* le64 */
export const VIRTIO_BLK_REQ_HDR_SIZE = 16;  /* device-readable, then data, then u8 status */

export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_GET_LIFETIME = 10;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_SECURE_ERASE = 14;

export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

/** GET_ID answers with at most this many bytes, NUL-padded (not terminated at 20). */
export const VIRTIO_BLK_ID_BYTES = 20;

/* 5.2.6 struct virtio_blk_discard_write_zeroes: the data of DISCARD and WRITE_ZEROES */
export const VIRTIO_BLK_DWZ_SECTOR = 0;       /* le64 */
export const VIRTIO_BLK_DWZ_NUM_SECTORS = 8;  /* le32 */
export const VIRTIO_BLK_DWZ_FLAGS = 12;       /* le32 */
export const VIRTIO_BLK_DWZ_SIZE = 16;
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;
