#!/usr/bin/env node
// Launcher for the `quire` bin: the CLI is TypeScript source run through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
