/* Which transport lklfuse picks (transport.ts) and which -o options the kernel transport takes. */
import t from 'tap';
import { chooseTransport } from '../../lib/fuse/transport.js';
import { kernelOptionProblem } from '../../lib/fuse/fuse-kernel.js';

const dev = '/dev/null'; // readable and writable by anyone: stands for a usable /dev/fuse
const missing = '/nonexistent/fuse';

t.test('chooseTransport', async (t) => {
  const rows: [string, Parameters<typeof chooseTransport>, string, boolean][] = [
    ['root, device, sysAs: kernel', [undefined, { hasSysAs: true, uid: 0, device: dev }], 'kernel', false],
    ['not root: fuse-native', [undefined, { hasSysAs: true, uid: 1000, device: dev }], 'fuse-native', false],
    ['no device: fuse-native', [undefined, { hasSysAs: true, uid: 0, device: missing }], 'fuse-native', false],
    ['a kernel without sysAs: fuse-native', [undefined, { hasSysAs: false, uid: 0, device: dev }], 'fuse-native', false],
    ['libfuse options: fuse-native', [undefined, { hasSysAs: true, uid: 0, device: dev, libfuseOnly: 'umask=' }], 'fuse-native', false],
    ['forced fuse-native as root', ['fuse-native', { hasSysAs: true, uid: 0, device: dev }], 'fuse-native', false],
    ['forced kernel, not root: an error', ['kernel', { hasSysAs: true, uid: 1000, device: dev }], 'kernel', true],
    ['forced kernel with libfuse options: an error', ['kernel', { hasSysAs: true, uid: 0, device: dev, libfuseOnly: 'umask=' }], 'kernel', true],
  ];
  for (const [name, args, kind, error] of rows) {
    const c = chooseTransport(...args);
    t.equal(c.kind, kind, name);
    t.equal(!!c.error, error, `${name}: ${c.error ?? c.why}`);
  }
});

t.test('kernelOptionProblem', async (t) => {
  t.equal(kernelOptionProblem([]), undefined, 'nothing');
  t.equal(kernelOptionProblem(['nosuid', 'nodev', 'noexec', 'relatime', 'max_read=65536']), undefined, 'mount flags and max_read=');
  t.match(kernelOptionProblem(['uid=1000', 'nodev']), /uid=1000 is not understood/, 'libfuse\'s uid=');
  t.match(kernelOptionProblem(['kernel_cache', 'umask=077']), /kernel_cache, umask=077 are not/, 'two of them');
  t.match(kernelOptionProblem(['max_read']), /max_read/, 'max_read without a value');
});
