// Several HocuspocusProviders on one HocuspocusProviderWebsocket (@hocuspocus/provider 4.x or
// 3.x), driven over stdin/stdout JSON lines as client.mjs is: each command line {"id", "cmd", ...}
// gets one reply line {"id", ...}; unsolicited lines are {"event", "doc", ...}.
import * as readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'

globalThis.WebSocket ??= WebSocket

const providers = new Map() // name -> { provider, doc }
let socket = null

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const commands = {
  async open ({ url, names, token, major }) {
    const pkg = { 4: '@hocuspocus/provider', 3: '@hocuspocus/provider-3' }[major ?? 4]
    const { HocuspocusProvider, HocuspocusProviderWebsocket } = await import(pkg)
    socket = new HocuspocusProviderWebsocket({ url, WebSocketPolyfill: WebSocket })
    socket.on('close', ({ event }) => emit({ event: 'close', code: event && event.code }))
    for (const name of names) {
      const doc = new Y.Doc()
      const provider = new HocuspocusProvider({
        websocketProvider: socket,
        name,
        document: doc,
        token,
        onAuthenticated: () => emit({ event: 'authenticated', doc: name }),
        onAuthenticationFailed: ({ reason }) => emit({ event: 'denied', doc: name, reason }),
        onSynced: ({ state }) => emit({ event: 'sync', doc: name, synced: state, text: doc.getText('text').toString() })
      })
      provider.attach() // a shared socket: the provider does not attach itself
      providers.set(name, { provider, doc })
    }
    return {}
  },
  insert ({ name, value }) {
    const text = providers.get(name).doc.getText('text')
    text.insert(text.length, value)
    return {}
  },
  quit () {
    for (const { provider } of providers.values()) provider.destroy()
    socket.destroy()
    setTimeout(() => process.exit(0), 10)
    return {}
  }
}

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const { id, cmd, ...args } = JSON.parse(line)
  try {
    emit({ id, ...(await commands[cmd](args)) })
  } catch (err) {
    emit({ id, error: String(err && err.message) })
  }
})
