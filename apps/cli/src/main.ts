#!/usr/bin/env node
/**
 * `quire` entry point: run the program on argv, then exit with its status (stdout and
 * stderr writes are awaited inside, so nothing is cut off).
 */
import { run } from './cli.ts';

// `quire versions t | head -1`: the reader went away; that is not a failure of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const code = await run(process.argv.slice(2));
process.exit(code);
