#!/usr/bin/env node
/*
 * cptofs: copy files into a filesystem image with the lkl-ts kernel (LKL's
 * tools/lkl/cptofs.c). cptofs and cpfromfs are one program (lib/tools/cp-main.ts), chosen
 * by name; this file only names it.
 */
import { hideBin } from 'yargs/helpers';
import { runCp } from '../lib/tools/cp-main.js';

runCp('cptofs', hideBin(process.argv)).then((status) => process.exit(status), (e: unknown) => {
  process.stderr.write(`cptofs: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
