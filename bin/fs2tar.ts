#!/usr/bin/env node
/*
 * fs2tar IMAGE TARFILE: the filesystem in a disk image as a tar archive, read through the
 * lkl-ts kernel (LKL's tools/lkl/fs2tar.c). The command line and the work are in
 * lib/tools/fs2tar-main.ts.
 */
import { hideBin } from 'yargs/helpers';
import { runFs2tar } from '../lib/tools/fs2tar-main.js';

runFs2tar(hideBin(process.argv)).then((status) => process.exit(status), (e: unknown) => {
  process.stderr.write(`fs2tar: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
