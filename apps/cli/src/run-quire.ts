// Test support for the CLI's integration tests (not a test itself): `quire` as its users run
// it, a process of its own (node + tsx on src/main.ts), given only the QUIRE_ variables a test
// names (none are inherited from the test's own environment).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { resolve } from 'node:path';

const cliDir = resolve(import.meta.dirname, '..');
const mainTs = resolve(import.meta.dirname, 'main.ts');

export interface QuireResult {
  code: number | null;
  /** stdout as UTF-8 text. */
  stdout: string;
  /** stdout byte for byte. */
  stdoutBytes: Buffer;
  stderr: string;
}

export type QuireChild = ChildProcessWithoutNullStreams & {
  result: Promise<QuireResult>;
  /** stderr so far (for a command still running). */
  stderrText: () => string;
};

/** Start `quire <args>` with `env` added to this process's environment minus its QUIRE_ variables; `input` is its stdin. */
export function startQuire(args: string[], env: Record<string, string> = {}, input?: string | Buffer): QuireChild {
  const base = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('QUIRE_')));
  const child = spawn(process.execPath, ['--import', 'tsx', mainTs, ...args], { cwd: cliDir, env: { ...base, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  child.stdin.end(input);
  const result = new Promise<QuireResult>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(out);
      res({ code, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: err });
    });
  });
  return Object.assign(child, { result, stderrText: () => err });
}

/** Run `quire <args>` to its end (see `startQuire`). */
export function runQuire(args: string[], env: Record<string, string> = {}, input?: string | Buffer): Promise<QuireResult> {
  return startQuire(args, env, input).result;
}
