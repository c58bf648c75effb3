// One seed of the random-fault campaign (test/fuzz/faults-random.test.ts):
// an ext4 image mounted over a FaultyStore whose reads, writes and flushes fail at seeded
// random points while a workload runs; then the faults stop and the image is checked.
import { FaultyStore, FileStore, type StoreFault } from '../../lib/drivers/stores.js';
import { O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY, type Kernel } from '../../lib/index.js';
import { Hang, within } from './fuzz/fuzz.js';
import { prngBytes } from './tree.js';

export interface FaultSeedOptions {
  /** Workload operations (default 60). */
  ops?: number;
  /** Probability that a read / write / flush fails (defaults 0.01 / 0.004 / 0.01). */
  pRead?: number;
  pWrite?: number;
  pFlush?: number;
  /** A call that does not come back within this is a hang (default 30 s). */
  watchdogMs?: number;
}

export interface FaultSeedResult {
  /** Operations the store failed. */
  faults: number;
  fsyncOk: number;
  fsyncFailed: number;
  /** The filesystem had gone read-only by the end of the workload (an aborted journal, errors=). */
  readOnly: boolean;
  /** Exceptions that escaped the system-call API (there must be none). */
  unexpected: string[];
  /** Set when a call hung. */
  hang?: string;
  /** The second mount's result (0, or a negative errno). */
  remount: number;
  /** Files of /w whose content must have survived: name → data. */
  durable: Map<string, Buffer>;
  /** Durable files that read back differently through the kernel after the remount. */
  mismatches: string[];
}

/** xorshift32: the workload's choices, replayable from the seed. */
function rng(seed: number): (n: number) => number {
  let x = (Math.imul(seed + 0x9e37, 2654435761) >>> 0) || 1;
  return (n) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
}

const ST_RDONLY = 1;
const NAMES = 12;

export async function faultSeed(k: Kernel, img: string, seed: number, o: FaultSeedOptions = {}): Promise<FaultSeedResult> {
  const ms = o.watchdogMs ?? 30_000;
  const res: FaultSeedResult = { faults: 0, fsyncOk: 0, fsyncFailed: 0, readOnly: false, unexpected: [], remount: 0, durable: new Map(), mismatches: [] };
  const faults: StoreFault[] = [
    { op: 'read', probability: o.pRead ?? 0.01, seed: seed * 3 + 1 },
    { op: 'write', probability: o.pWrite ?? 0.004, seed: seed * 3 + 2 },
    // Some write faults are torn: part of the data reaches the disk. Not the primary
    // superblock's: torn, its checksum fails and no kernel mounts the image (Linux neither);
    // that is e2fsck's work from a backup superblock, outside what this campaign checks.
    { op: 'write', probability: (o.pWrite ?? 0.004) / 3, seed: seed * 3 + 3, short: 512,
      match: (b, pos) => pos >= 2048 || pos + b.length <= 1024 },
    { op: 'flush', probability: o.pFlush ?? 0.01, seed: seed * 7 + 5 },
  ];
  const call = async <T>(what: string, p: Promise<T>): Promise<T | undefined> => {
    try { return await within(what, p, ms); } catch (e) {
      if (e instanceof Hang) { res.hang ??= e.message; throw e; }
      res.unexpected.push(`${what}: ${(e as Error)?.stack ?? String(e)}`);
      return undefined;
    }
  };
  // Mount with no faults, make the work directory durable, then turn the faults on.
  const store = new FaultyStore(await FileStore.open(img), { faults: [] });
  const id = await k.diskAdd({ store });
  const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
  if (typeof mnt !== 'string') throw new Error(`seed ${seed}: the clean image does not mount: ${mnt}`);
  const w = `${mnt}/w`;
  await k.sys.mkdir(w, 0o755);
  await k.sys.sync();
  for (const f of faults) store.addFault(f);
  const r = rng(seed);
  /** name → data, for files whose last change was fsync'd with success. */
  const durable = new Map<string, Buffer>();
  try {
    for (let i = 0; i < (o.ops ?? 60); i++) {
      const a = `f${r(NAMES)}`, b = `f${r(NAMES)}`;
      switch (r(8)) {
        case 0: case 1: case 2: { // write a whole file, then fsync it
          const data = prngBytes(seed * 1000 + i, 1 + r(24 * 1024));
          durable.delete(a);
          const fd = await call('open', k.sys.open(`${w}/${a}`, O_WRONLY | O_CREAT | O_TRUNC, 0o644));
          if (fd === undefined || fd < 0) break;
          const n = await call('pwrite64', k.sys.pwrite64(fd, data, 0));
          const s = await call('fsync', k.sys.fsync(fd));
          await call('close', k.sys.close(fd));
          if (n === data.length && s === 0) { res.fsyncOk++; durable.set(a, data); } else res.fsyncFailed++;
          break;
        }
        case 3: durable.delete(a); durable.delete(b); await call('rename', k.sys.rename(`${w}/${a}`, `${w}/${b}`)); break;
        case 4: durable.delete(a); await call('unlink', k.sys.unlink(`${w}/${a}`)); break;
        case 5: await call('mkdir', k.sys.mkdir(`${w}/d${i}`, 0o755)); break;
        case 6: await call('sync', k.sys.sync()); break;
        default: { // read a file back
          const fd = await call('open', k.sys.open(`${w}/${a}`, O_RDONLY));
          if (fd !== undefined && fd >= 0) {
            await call('pread64', k.sys.pread64(fd, new Uint8Array(8192), 0));
            await call('close', k.sys.close(fd));
          }
        }
      }
    }
    const st = await call('statfs', k.sys.statfs(mnt));
    res.readOnly = typeof st === 'object' && st !== null && (st.flags & ST_RDONLY) !== 0;
  } catch (e) {
    if (!(e instanceof Hang)) throw e;
    return res;
  } finally {
    res.faults = faults.reduce((n, f) => n + (f.hits ?? 0), 0);
  }
  store.clearFaults();
  // The unmount may report the faults' damage; it must come back.
  try {
    await within('umount', k.umountDev(id, 0), ms);
    await within('diskRemove', k.diskRemove(id), ms);
  } catch (e) { if (e instanceof Hang) { res.hang = e.message; return res; } throw e; }
  res.durable = durable;
  // The next mount replays the journal; every durable file must read back.
  const id2 = await k.diskAdd({ store: await FileStore.open(img) });
  const m2 = await k.mountDev(id2, 0, 'ext4', 0, '');
  if (typeof m2 !== 'string') { res.remount = m2; await k.diskRemove(id2); return res; }
  for (const [name, data] of durable) {
    const fd = await k.sys.open(`${m2}/w/${name}`, O_RDONLY);
    const buf = new Uint8Array(data.length + 1);
    const n = fd < 0 ? fd : await k.sys.pread64(fd, buf, 0);
    if (fd >= 0) await k.sys.close(fd);
    if (n !== data.length || !Buffer.from(buf.subarray(0, data.length)).equals(data)) res.mismatches.push(`${name}: ${n < 0 ? `error ${n}` : `${n} bytes`}`);
  }
  await k.umountDev(id2, 0);
  await k.diskRemove(id2);
  return res;
}
