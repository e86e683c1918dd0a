import { defineConfig, type Plugin } from 'vite'

// y-tiptap's `lib0/diff` is src/editor/caret-diff.ts: its text diff told where the caret is
// (that file says why). Only y-tiptap's import: everything else gets lib0's.
const CARET_DIFF = decodeURIComponent(new URL('src/editor/caret-diff.ts', import.meta.url).pathname)
const Y_TIPTAP = '@tiptap/y-tiptap'
// y-tiptap's lib0 modules (its `lib0/diff` is the plugin's).
const Y_TIPTAP_LIB0 =
  'buffer dom environment error eventloop hash/sha256 map math mutex object random set'.split(' ')

function caretDiff(): Plugin {
  let building = false
  let redirected = 0
  return {
    name: 'steno-caret-diff',
    enforce: 'pre',
    configResolved(config) {
      building = config.command === 'build'
    },
    resolveId(source, importer) {
      if (source !== 'lib0/diff' || !importer || !/[\\/]@tiptap[\\/]y-tiptap[\\/]/.test(importer)) return null
      redirected++
      return CARET_DIFF
    },
    buildEnd(error) {
      // An upgrade of y-tiptap that imports its diff otherwise would silently drop the override.
      if (building && !error && redirected === 0)
        this.error(`${Y_TIPTAP} no longer imports 'lib0/diff': update the steno-caret-diff plugin`)
    },
  }
}

// y-tiptap's `isMisresolvedAfterStructuralChange` overrides the Yjs-resolved caret whenever the old
// and new caret are both at a block's start, with "the Nth block of the same type and text": every
// empty line has the same text, so a colleague's new empty line above yours took your caret (and
// your typing). Only a changed offset, type or attrs (`suspicious`) may override Yjs now; the
// checks before it (other text, no textblock: a block moved or replaced) are unchanged.
const MISRESOLVED_AT_START = 'if (bothAtStart || suspicious) {'

function caretAtBlockStart(): Plugin {
  let building = false
  let rewritten = 0
  return {
    name: 'steno-caret-at-block-start',
    enforce: 'pre',
    configResolved(config) {
      building = config.command === 'build'
    },
    transform(code, id) {
      if (!/[\\/]@tiptap[\\/]y-tiptap[\\/]dist[\\/]y-tiptap\.js$/.test(id.split('?')[0]!)) return null
      const at = code.indexOf(MISRESOLVED_AT_START)
      if (at < 0 || code.indexOf(MISRESOLVED_AT_START, at + 1) >= 0)
        this.error(
          `${Y_TIPTAP}: '${MISRESOLVED_AT_START}' not found once: update the steno-caret-at-block-start plugin`,
        )
      rewritten++
      return { code: code.replace(MISRESOLVED_AT_START, 'if (suspicious) {'), map: null }
    },
    buildEnd(error) {
      // An upgrade that renames the module would otherwise silently bring the bug back.
      if (building && !error && rewritten === 0)
        this.error(
          `${Y_TIPTAP}'s dist/y-tiptap.js was not rewritten: update the steno-caret-at-block-start plugin`,
        )
    },
  }
}

// The gateway serves dist/index.html at `/` and dist/assets/* at `/assets/`.
// `npm run dev` proxies the API and the WebSocket to a gateway on :8000.
export default defineConfig({
  base: '/',
  plugins: [caretDiff(), caretAtBlockStart()],
  // `npm run dev` pre-bundles dependencies without the plugins above: y-tiptap is served as it is,
  // so that its imports reach them. Its own imports must still be pre-bundled, or the page gets a
  // second ProseMirror beside TipTap's (tests/web/test_dev_server.py checks each).
  optimizeDeps: {
    exclude: [Y_TIPTAP],
    include: [
      'yjs',
      'y-protocols/awareness',
      ...['model', 'state', 'transform', 'view'].map((name) => `prosemirror-${name}`),
      ...Y_TIPTAP_LIB0.map((name) => `lib0/${name}`),
    ],
  },
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
