#!/usr/bin/env node
/**
 * The `keymesh` command: the V8 flags first, then everything else.
 *
 * The commands are imported dynamically, after `v8-flags.js` has run: a static import graph is fetched, parsed and
 * linked before its first module runs, and loading the about 1,300 modules of a node fills V8's young generation
 * until it has grown to 16 MiB, which it then keeps. With the flags set first it stays at 1 MiB per semi-space.
 */
import './v8-flags.js';

const { runCommand } = await import('./commands.js');
void runCommand(process.argv);
