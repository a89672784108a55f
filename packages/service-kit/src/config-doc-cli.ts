// `pnpm config-doc`: print the configuration table for the README.
import { configTable } from './config-doc.ts';

process.stdout.write(`${configTable()}\n`);
