import { APP_VARIABLES, SHARED_VARIABLES } from './config.ts';

/**
 * The configuration reference as a Markdown table, made from the one registry the loaders
 * use (so the README cannot list a variable that does not exist, nor miss one: a test
 * compares them). `pnpm config-doc` prints it.
 */
export function configTable(): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  const rows: string[] = ['| variable | read by | meaning |', '|---|---|---|'];
  for (const [name, meaning] of Object.entries(SHARED_VARIABLES)) rows.push(`| \`${name}\` | both services | ${cell(meaning)} |`);
  for (const [app, vars] of Object.entries(APP_VARIABLES)) {
    for (const [name, meaning] of Object.entries(vars)) rows.push(`| \`${name}\` | ${app} | ${cell(meaning)} |`);
  }
  return rows.join('\n');
}
