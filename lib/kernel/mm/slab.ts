/*
 * kmalloc / kzalloc for small byte arrays (mm/slab_common.c's role): carved from shared
 * 16 KiB slabs instead of one ArrayBuffer each. An ArrayBuffer of its own costs a backing
 * store and its bookkeeping outside the JavaScript heap (several times the bytes of a
 * 128-byte inode), and the garbage collector tracks each; a slab is one, freed once
 * nothing carved from it is alive (so a long-lived object keeps its slab's 16 KiB: use
 * these for objects that come and go together, such as cached inodes' raw bytes).
 *
 * Not counted in the kernel's page budget (mb=), like the rest of the JavaScript heap.
 */

const SLAB_BYTES = 16384;
/** Larger requests get an ArrayBuffer of their own. */
const KMALLOC_MAX_SLAB = 1024;

let slab = new ArrayBuffer(SLAB_BYTES);
let used = 0;

/** `size` bytes, not zeroed (the caller fills them all). A plain Uint8Array: slice() copies. */
export function kmalloc(size: number): Uint8Array {
  if (size > KMALLOC_MAX_SLAB) return new Uint8Array(size);
  const need = Math.ceil(size / 8) * 8;
  if (used + need > SLAB_BYTES) { slab = new ArrayBuffer(SLAB_BYTES); used = 0; }
  const b = new Uint8Array(slab, used, size);
  used += need;
  return b;
}

/** `size` zeroed bytes. */
export function kzalloc(size: number): Uint8Array {
  return kmalloc(size).fill(0);
}
