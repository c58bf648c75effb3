/*
 * The virtio-blk device ABI (include/uapi/linux/virtio_blk.h; virtio 1.x 5.2): feature bits,
 * configuration layout, requests.
 * Shared by the kernel's drivers and the host's devices; pure data, imports nothing but
 * its sibling uapi headers.
 */
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
