/*
 * The node options the lklfuse daemon runs with, for the background run (lklfuse.ts), the
 * `lklfuse` command's #! line (bin/lklfuse.ts, which must say the same: a test checks) and
 * the tests that start the daemon with node themselves.
 */
/**
 * V8 options the daemon runs with (the `lklfuse` command's #! line carries the same, and
 * the background run passes them on). --max-semi-space-size=2: V8's young generation is
 * otherwise allowed to grow to 3 x 16 MiB, and the daemon's stream of short-lived objects
 * (a frame, a promise chain and a reply per FUSE request) makes it grow that far: with 2 MiB
 * semi-spaces the daemon's peak RSS writing 32 MiB through the mount went from ~143 to
 * ~115 MiB, with no loss of speed (scripts/bench/README.md).
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** `execArgv` with DAEMON_NODE_FLAGS added where it does not set them itself. */
export function daemonExecArgv(execArgv: readonly string[]): string[] {
  const name = (f: string) => f.split('=')[0]!.replace(/_/g, '-');
  const have = new Set(execArgv.map(name));
  return [...execArgv, ...DAEMON_NODE_FLAGS.filter((f) => !have.has(name(f)))];
}
