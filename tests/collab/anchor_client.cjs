// A stock Yjs client (y-websocket's WebsocketProvider) that edits TipTap-shaped paragraphs and
// resolves comment anchors with Yjs itself. JSON lines as in tests/interop/client.mjs; modules
// come from tests/interop/node_modules (NODE_PATH).
const readline = require('node:readline')
const WebSocket = require('ws')
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')

const doc = new Y.Doc()
const fragment = doc.getXmlFragment('default')
let provider = null
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const line = (i) => fragment.get(i).get(0)
const plain = () => fragment.toArray().map((p) => p.get(0).toString()).join('\n')

function resolve (b64) {
  const rpos = Y.decodeRelativePosition(Buffer.from(b64, 'base64'))
  const abs = Y.createAbsolutePositionFromRelativePosition(rpos, doc)
  if (abs === null) return { para: null, index: null }
  const para = fragment.toArray().findIndex((p) => p.get(0) === abs.type)
  return { para, index: abs.index }
}

const commands = {
  connect ({ url, room, params }) {
    provider = new WebsocketProvider(url, room, doc, { params, WebSocketPolyfill: WebSocket, disableBc: true })
    return new Promise((resolve) => provider.once('sync', () => resolve({ text: plain() })))
  },
  insert ({ para, index, value }) { line(para).insert(index, value); return { text: plain() } },
  remove ({ para, index, length }) { line(para).delete(index, length); return { text: plain() } },
  relative ({ para, start, end }) {
    const enc = (i, assoc) => Buffer.from(Y.encodeRelativePosition(
      Y.createRelativePositionFromTypeIndex(line(para), i, assoc))).toString('base64')
    return { start: enc(start, 0), end: enc(end, -1) }
  },
  resolve ({ anchors }) { return { positions: anchors.map(resolve), text: plain() } },
  waitText ({ equals }) {
    return new Promise((resolve) => {
      const check = () => { if (plain() === equals) { doc.off('update', check); resolve({}) } }
      doc.on('update', check)
      check()
    })
  },
  quit () { provider.destroy(); setTimeout(() => process.exit(0), 10); return {} }
}

readline.createInterface({ input: process.stdin }).on('line', async (raw) => {
  const { id, cmd, ...args } = JSON.parse(raw)
  try {
    emit({ id, ...(await commands[cmd](args)) })
  } catch (e) {
    emit({ id, error: String(e && e.stack) })
  }
})
