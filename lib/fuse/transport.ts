/*
 * Which FUSE transport lklfuse uses: its own implementation of the kernel protocol on
 * /dev/fuse (fuse-kernel.ts, root only), or libfuse 2 through fuse-native (fuse-native.ts,
 * anyone). Automatic unless `-o transport=` says: the kernel transport when running as root
 * with a usable /dev/fuse and a kernel that can run calls with a caller's credentials.
 */
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { FUSE_DEVICE } from './fuse-kernel.js';

export type TransportKind = 'kernel' | 'fuse-native';

/**
 * A live FUSE mount, whichever transport serves it (KernelFuseMount in fuse-kernel.ts,
 * FuseMount in fuse-native.ts). Emits 'unmounted' once if the mount goes away without
 * unmount() (fusermount -u, umount, umount -l), and sets `gone`.
 */
export interface TransportMount extends EventEmitter {
  readonly mountPoint: string;
  /** The mount's id in /proc/self/mountinfo. */
  mountId: number;
  /**
   * True once the mount went away without unmount(), whether or not anyone was listening
   * for 'unmounted' then (a mount can be gone before mount() resolves: check this first).
   */
  readonly gone: boolean;
  /** Unmounts (lazily if busy); resolves once the mount is gone. */
  unmount(): Promise<void>;
}

export interface TransportChoice { kind: TransportKind; why: string; error?: string }

/**
 * env.libfuseOnly: why the -o options need libfuse (kernelOptionProblem), if they do; the
 * automatic choice then falls back to fuse-native, a forced kernel transport fails.
 */
export function chooseTransport(forced: TransportKind | undefined, env: { hasSysAs: boolean; uid?: number; device?: string; libfuseOnly?: string }): TransportChoice {
  const uid = env.uid ?? process.getuid?.() ?? -1;
  const dev = env.device ?? FUSE_DEVICE();
  let devOk = true;
  try { fs.accessSync(dev, fs.constants.R_OK | fs.constants.W_OK); } catch { devOk = false; }
  const kernelWhyNot = uid !== 0 ? 'not running as root (mounting a /dev/fuse descriptor of our own needs root)'
    : !devOk ? `${dev} is not usable`
    : !env.hasSysAs ? 'this kernel cannot run calls with a caller\'s credentials (no sysAs)'
    : env.libfuseOnly ?? '';
  if (forced === 'fuse-native') return { kind: 'fuse-native', why: 'transport=fuse-native' };
  if (forced === 'kernel') {
    if (uid !== 0 || !devOk || env.libfuseOnly) return { kind: 'kernel', why: 'transport=kernel', error: `transport=kernel: ${kernelWhyNot}` };
    return { kind: 'kernel', why: 'transport=kernel' };
  }
  return kernelWhyNot ? { kind: 'fuse-native', why: kernelWhyNot } : { kind: 'kernel', why: 'root with /dev/fuse' };
}
