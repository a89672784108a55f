/**
 * Debian's Chromium driven by playwright-core, for the browser tests and the screenshot
 * script. Never a downloaded browser: `scripts/ensure-chromium.sh` installs the distro
 * package when missing (and fails loudly when it cannot). The flags keep Chromium from
 * dialling out (the test machine's network is closed; without them it hangs on connections).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { UI_ROOT } from '../server/index.ts';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export function ensureChromium(): void {
  execFileSync('bash', [join(UI_ROOT, 'scripts/ensure-chromium.sh')], { stdio: 'inherit' });
}

export interface LaunchedBrowser {
  /** A persistent context on a fresh profile directory (removed by close). */
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(viewport = { width: 1366, height: 860 }): Promise<LaunchedBrowser> {
  ensureChromium();
  // A fresh --user-data-dir each time (playwright passes it for a persistent context).
  const profile = mkdtempSync(join(tmpdir(), 'quire-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport,
    timeout: 60_000,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
