// The BlobStore contract against local directories (two "regions" in a temporary directory),
// plus what only a directory store has: its file layout and path containment.
import { mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Code, isQuireError } from '@quire/core';
import { describeBlobStoreContract } from './contract.ts';
import { createFsBlobStore } from './fs.ts';

async function makeFsFixture() {
  const base = await mkdtemp(join(tmpdir(), 'quire-blob-fs-'));
  const regions = [
    { name: 'local-a', dir: join(base, 'a') },
    { name: 'local-b', dir: join(base, 'b') },
  ];
  return {
    base,
    store: createFsBlobStore({ regions }),
    regions: regions.map((r) => r.name),
    cleanup: () => rm(base, { recursive: true, force: true }),
    // A region whose directory vanished (an unmounted volume).
    breakRegion: async (region: string) => {
      const r = regions.find((x) => x.name === region)!;
      await rename(r.dir, `${r.dir}.broken`);
    },
  };
}

describeBlobStoreContract('fs', makeFsFixture);

describe('fs blob store specifics', () => {
  it('keeps temporary files out of sight and leaves none after puts, failed or not', async () => {
    const fx = await makeFsFixture();
    try {
      await fx.store.init();
      await fx.store.put('t/ok', Buffer.from('ok'));
      await expect(fx.store.put('t/bad', Buffer.from('abc'), { size: 9 })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
      // A crashed put's temporary file is never listed.
      await writeFile(join(fx.base, 'a', 't', '~crashed.tmp'), 'partial');
      const listed = [];
      for await (const e of fx.store.list('t/', 'local-a')) listed.push(e.key);
      expect(listed).toEqual(['t/ok']);
      expect((await readdir(join(fx.base, 'b', 't'))).sort()).toEqual(['ok']);
    } finally {
      await fx.cleanup();
    }
  });

  it('does not write outside the region directory and does not recreate a missing root', async () => {
    const fx = await makeFsFixture();
    try {
      await fx.store.init();
      await expect(fx.store.put('../escape', Buffer.from('x'))).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, field: 'key' });
      expect((await readdir(fx.base)).sort()).toEqual(['a', 'b']);
      await rm(join(fx.base, 'b'), { recursive: true });
      const err = await fx.store.put('k', Buffer.from('x')).catch((e: unknown) => e);
      expect(isQuireError(err, Code.UNAVAILABLE)).toBe(true);
      expect((await readdir(fx.base)).sort()).toEqual(['a']);
      expect(await fx.store.head('k', 'local-a')).toBeUndefined();
    } finally {
      await fx.cleanup();
    }
  });

  it('refuses a key that clashes with a directory of longer keys (FAILED_PRECONDITION)', async () => {
    const fx = await makeFsFixture();
    try {
      await fx.store.init();
      await fx.store.put('x/y', Buffer.from('1'));
      await expect(fx.store.put('x', Buffer.from('2'))).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION });
      await expect(fx.store.put('x/y/z', Buffer.from('3'))).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION });
      expect(await fx.store.head('x', 'local-a')).toBeUndefined();
      expect(await fx.store.head('x/y/z', 'local-a')).toBeUndefined();
    } finally {
      await fx.cleanup();
    }
  });

  it('checks its options', () => {
    expect(() => createFsBlobStore({ regions: [] })).toThrow(/regions/);
    expect(() => createFsBlobStore({ regions: [{ name: 'a', dir: '/tmp/x' }, { name: 'a', dir: '/tmp/y' }] })).toThrow(/repeats/);
    expect(() => createFsBlobStore({ regions: [{ name: 'a', dir: '/tmp/x' }, { name: 'b', dir: '/tmp/x/' }] })).toThrow(/already used/);
  });
});
