import { defineConfig, type Plugin } from 'vite'

// y-tiptap's `lib0/diff` is src/editor/caret-diff.ts: its text diff told where the caret is
// (that file says why). Only y-tiptap's import: everything else gets lib0's. The built bundle
// only: `npm run dev` pre-bundles y-tiptap with lib0's own diff.
const CARET_DIFF = decodeURIComponent(new URL('src/editor/caret-diff.ts', import.meta.url).pathname)
const caretDiff: Plugin = {
  name: 'steno-caret-diff',
  enforce: 'pre',
  resolveId(source, importer) {
    if (source === 'lib0/diff' && importer && /[\\/]@tiptap[\\/]y-tiptap[\\/]/.test(importer))
      return CARET_DIFF
    return null
  },
}

// The gateway serves dist/index.html at `/` and dist/assets/* at `/assets/`.
// `npm run dev` proxies the API and the WebSocket to a gateway on :8000.
export default defineConfig({
  base: '/',
  plugins: [caretDiff],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: {
      '/v1': { target: 'http://127.0.0.1:8000', ws: true },
      '/dev': 'http://127.0.0.1:8000',
    },
  },
})
