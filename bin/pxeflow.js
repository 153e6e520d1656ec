#!/usr/bin/env node
// The `pxeflow` command: registers tsx (no build step) and runs cli/main.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
await main();
