/*
 * Every kernel subsystem, imported for its init calls (the kernel's link order).
 * Order matters only for registration; init levels decide boot order.
 */
import './kernel/cred.js';
import './kernel/sys_misc.js';
import './mm/filemap.js';
import './fs/fs-writeback.js';
import './block/blk-core.js';
import './block/bdev.js';
import './block/genhd.js';
import './fs/buffer.js';
import './drivers/virtio/virtio_mmio.js';
import './drivers/block/virtio_blk.js';
import './fs/namespace.js';
import './fs/namei.js';
import './fs/open.js';
import './fs/file_table.js';
import './fs/read_write.js';
import './fs/stat.js';
import './fs/readdir.js';
import './fs/xattr.js';
import './fs/ioctl.js';
import './fs/sync.js';
import './fs/ramfs/inode.js';
import './fs/fat/super.js';
import './fs/ext4/super.js';
import './kernel/hung_task.js';
