// Child process for driver-crash.test.ts: mount an image read-write, write and fsync a file,
// dirty another one without syncing, say READY and wait to be killed.
import { startKernel, O_CREAT, O_WRONLY } from '../../lib/index.js';

const [img, seedArg] = process.argv.slice(2);
const seed = Number(seedArg ?? 1);
function pattern(n: number, s: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = s >>> 0;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}
const k = await startKernel({ memMiB: 64, print: () => {} });
const disk = await k.diskAdd({ path: img! });
const mp = await k.mountDev(disk, 0, 'vfat', 0, '');
if (typeof mp !== 'string') { console.log(`MOUNT ${mp}`); process.exit(1); }
await k.sys.mkdir(`${mp}/Synced Dir`, 0o755);
const fd = await k.sys.open(`${mp}/Synced Dir/fsynced file.bin`, O_CREAT | O_WRONLY, 0o644);
await k.sys.write(fd, pattern(123_457, seed));
const r = await k.sys.fsync(fd);
await k.sys.close(fd);
const fd2 = await k.sys.open(`${mp}/not synced.bin`, O_CREAT | O_WRONLY, 0o644);
await k.sys.write(fd2, pattern(50_000, seed + 1));
console.log(`READY ${r}`);
setInterval(() => {}, 1000);
