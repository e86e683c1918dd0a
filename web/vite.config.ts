import { defineConfig } from 'vite'

// The gateway serves dist/index.html at `/` and dist/assets/* at `/assets/`.
// `npm run dev` proxies the API and the WebSocket to a gateway on :8000.
export default defineConfig({
  base: '/',
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
