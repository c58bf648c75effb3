/*
 * The metadata block cache (fs/mbcache.c): entries of (e_key, e_value), several values per
 * key, each marked reusable or not. ext4 keeps its xattr blocks there by their hash (key:
 * h_hash, value: block number), so that an inode whose attributes come out equal to another
 * block's shares that block instead of getting one of its own. The cache is only a hint:
 * whoever finds an entry reads the block and compares. Bounded: the least recently used
 * entries go first (Linux's shrinker).
 */

export class mb_cache_entry {
  constructor(readonly e_key: number, readonly e_value: number, public e_reusable: boolean) {}
}

export class mb_cache {
  /** key → entries, oldest first */
  readonly c_hash = new Map<number, mb_cache_entry[]>();
  /** every entry, least recently used first (a Map keeps insertion order) */
  readonly c_lru = new Map<mb_cache_entry, true>();
  constructor(readonly c_max_entries: number) {}
}

/** mb_cache_create: an empty cache of at most 2^bucket_bits * 16 entries. */
export function mb_cache_create(bucket_bits: number): mb_cache {
  return new mb_cache(2 ** bucket_bits * 16);
}

/** mb_cache_destroy: every entry dropped. */
export function mb_cache_destroy(cache: mb_cache): void {
  cache.c_hash.clear();
  cache.c_lru.clear();
}

function entry_get(cache: mb_cache, key: number, value: number): mb_cache_entry | null {
  return cache.c_hash.get(key)?.find((e) => e.e_value === value) ?? null;
}

function entry_unhash(cache: mb_cache, e: mb_cache_entry): void {
  const list = cache.c_hash.get(e.e_key);
  if (list) {
    const i = list.indexOf(e);
    if (i >= 0) list.splice(i, 1);
    if (!list.length) cache.c_hash.delete(e.e_key);
  }
  cache.c_lru.delete(e);
}

/**
 * mb_cache_entry_create: (key, value) added, or its reusable mark updated when it is there
 * already (Linux answers EBUSY then; its callers ignore that and set the mark themselves).
 */
export function mb_cache_entry_create(cache: mb_cache, key: number, value: number, reusable: boolean): void {
  const old = entry_get(cache, key, value);
  if (old) {
    old.e_reusable = reusable;
    mb_cache_entry_touch(cache, old);
    return;
  }
  const e = new mb_cache_entry(key, value, reusable);
  let list = cache.c_hash.get(key);
  if (!list) { list = []; cache.c_hash.set(key, list); }
  list.push(e);
  cache.c_lru.set(e, true);
  while (cache.c_lru.size > cache.c_max_entries) entry_unhash(cache, cache.c_lru.keys().next().value!);
}

/** mb_cache_entry_delete: (key, value) no longer cached. */
export function mb_cache_entry_delete(cache: mb_cache, key: number, value: number): void {
  const e = entry_get(cache, key, value);
  if (e) entry_unhash(cache, e);
}

/** mb_cache_entry_get: the entry (key, value), reusable or not. */
export function mb_cache_entry_get(cache: mb_cache, key: number, value: number): mb_cache_entry | null {
  return entry_get(cache, key, value);
}

/** mb_cache_entry_touch: used just now (last to go). */
export function mb_cache_entry_touch(cache: mb_cache, e: mb_cache_entry): void {
  if (!cache.c_lru.delete(e)) return;
  cache.c_lru.set(e, true);
}

/** mb_cache_entry_find_first: the first reusable entry of `key`, or null. */
export function mb_cache_entry_find_first(cache: mb_cache, key: number): mb_cache_entry | null {
  return cache.c_hash.get(key)?.find((e) => e.e_reusable) ?? null;
}

/** mb_cache_entry_find_next: the next reusable entry with the same key after `prev`, or null. */
export function mb_cache_entry_find_next(cache: mb_cache, prev: mb_cache_entry): mb_cache_entry | null {
  const list = cache.c_hash.get(prev.e_key);
  if (!list) return null;
  for (let i = list.indexOf(prev) + 1; i > 0 && i < list.length; i++) if (list[i]!.e_reusable) return list[i]!;
  return null;
}
