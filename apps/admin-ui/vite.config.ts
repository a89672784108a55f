// Vite builds the UI into dist/ (served by the quickstart's UI server); `pnpm dev` proxies
// /api to a publish service on 127.0.0.1:7080.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  server: { proxy: { '/api': { target: 'http://127.0.0.1:7080', rewrite: (p) => p.replace(/^\/api/, '') } } },
});
