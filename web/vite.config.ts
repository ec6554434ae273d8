import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// Two pages: the dashboard (served at `/`) and GraphiQL (served at
// `GET /graphql` to browsers). Hashed assets go to dist/assets/; the
// favicon is copied from public/ to the dist root.
//
// The output is committed, so the build must be byte-for-byte reproducible:
// no source maps (they would embed absolute paths), no timestamps, and a
// pinned toolchain (package-lock.json).
const apiTarget = process.env.OKR_PULSE_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // GraphiQL's editor is large; a single chunk of ~1 MB is expected.
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      // framer-motion (inside GraphiQL) marks modules "use client", which
      // means nothing outside React Server Components: not worth a warning.
      onwarn(warning, warn) {
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
      output: {
        // React is shared by both pages: one cacheable chunk with a clear name.
        manualChunks(id: string) {
          if (/node_modules[\\/](react|react-dom|scheduler)[\\/]/.test(id)) return 'react';
          if (/node_modules[\\/]graphql-ws[\\/]/.test(id)) return 'graphql-ws';
          return undefined;
        },
      },
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        graphiql: resolve(import.meta.dirname, 'graphiql.html'),
      },
    },
  },
  // For manual checks only (`npm run dev` / `npm run preview`): forward the
  // API to a running okr-pulse server. The e2e tests use the server's own origin.
  server: {
    proxy: { '/graphql': { target: apiTarget, ws: true }, '/readyz': apiTarget },
  },
  preview: {
    proxy: { '/graphql': { target: apiTarget, ws: true }, '/readyz': apiTarget },
  },
});
