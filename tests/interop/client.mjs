// A stock Yjs client (y-websocket's WebsocketProvider) driven over stdin/stdout JSON lines.
// Each command line {"id", "cmd", ...} gets one reply line {"id", ...}; unsolicited lines are
// {"event", ...}. Waits happen here, on Yjs events, so the Python side never sleeps.
import * as readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

// Node 20 has no global WebSocket; the 2.x provider uses it whatever WebSocketPolyfill says.
globalThis.WebSocket ??= WebSocket

const doc = new Y.Doc()
const text = doc.getText('text')
const fragment = doc.getXmlFragment('default')
let provider = null
const history = [] // text after each change applied from the network
const waiters = new Set()

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const xmlPlain = () => fragment.toArray().map((el) => el.toArray().map((t) => t.toString()).join('')).join('\n')
const states = () => Array.from(provider.awareness.getStates().entries()).filter(([id]) => id !== doc.clientID)

function check () {
  for (const w of waiters) {
    if (w.test()) { waiters.delete(w); clearTimeout(w.timer); w.resolve() }
  }
}

text.observe((event) => { if (event.transaction.origin === provider) history.push(text.toString()) })
doc.on('update', check)

function waitFor (test, timeoutMs) {
  return new Promise((resolve, reject) => {
    const w = { test, resolve }
    w.timer = setTimeout(() => { waiters.delete(w); reject(new Error('timeout')) }, timeoutMs)
    waiters.add(w)
    check()
  })
}

const commands = {
  connect ({ url, room, params }) {
    provider = new WebsocketProvider(url, room, doc, { params, WebSocketPolyfill: WebSocket, disableBc: true })
    provider.on('sync', (synced) => emit({ event: 'sync', synced, text: text.toString(), xml: xmlPlain() }))
    provider.on('status', ({ status }) => emit({ event: 'status', status }))
    provider.on('connection-close', (e) => emit({ event: 'close', code: e && e.code }))
    provider.awareness.on('change', check)
    return { clientID: doc.clientID }
  },
  // TipTap's own provider, against /v1/hocuspocus: the same document and commands. `major` 3:
  // the 3.x provider (TipTap 2 apps), which sends no version and knows no ping.
  // `tokens`: a token function handing out these in turn, the last one for good (as an app's
  // function fetching fresh tokens would); each call is an event.
  async hocuspocus ({ url, name, token, tokens, major }) {
    // One provider version per process (each brings its own @hocuspocus/common).
    const pkg = { 4: '@hocuspocus/provider', 3: '@hocuspocus/provider-3', 2: '@hocuspocus/provider-2' }[major ?? 4]
    const { HocuspocusProvider: Provider } = await import(pkg)
    let fetched = 0
    const next = () => {
      emit({ event: 'token', n: fetched })
      return tokens[Math.min(fetched++, tokens.length - 1)]
    }
    provider = new Provider({
      url,
      name,
      document: doc,
      token: tokens ? next : token,
      WebSocketPolyfill: WebSocket,
      onAuthenticated: () => emit({ event: 'authenticated', scope: provider.authorizedScope }), // 2.x passes nothing
      onAuthenticationFailed: ({ reason }) => emit({ event: 'denied', reason }),
      onSynced: ({ state }) => emit({ event: 'sync', synced: state, text: text.toString(), xml: xmlPlain() }),
      onStatus: ({ status }) => emit({ event: 'status', status }),
      onClose: ({ event }) => emit({ event: 'close', code: event && event.code, reason: event && event.reason }),
      onStateless: ({ payload }) => emit({ event: 'stateless', payload })
    })
    provider.on('unsyncedChanges', check)
    provider.awareness.on('change', check)
    return { clientID: doc.clientID }
  },
  // TipTap Collab's own provider, as @hocuspocus/provider 2.x bundles it (later versions are on
  // TipTap's private registry): a HocuspocusProvider on `baseUrl` that keeps its comment
  // threads and its users (Y.PermanentUserData) in the document, under `__tiptapcollab__*`.
  async tiptapCollab ({ baseUrl, name, token, user }) {
    const { TiptapCollabProvider } = await import('@hocuspocus/provider-2')
    provider = new TiptapCollabProvider({
      appId: 'unused',
      baseUrl,
      name,
      document: doc,
      token,
      user,
      WebSocketPolyfill: WebSocket,
      onAuthenticated: () => emit({ event: 'authenticated' }),
      onAuthenticationFailed: ({ reason }) => emit({ event: 'denied', reason }),
      onSynced: ({ state }) => emit({ event: 'sync', synced: state, text: text.toString(), xml: xmlPlain() })
    })
    provider.on('unsyncedChanges', check)
    provider.awareness.on('change', check)
    return { clientID: doc.clientID }
  },
  comment ({ content }) {
    const thread = provider.createThread({ data: { section: 'intro' } })
    provider.addComment(thread.id, { content, data: {} })
    return { thread: thread.id }
  },
  threads () {
    return { threads: doc.getArray('__tiptapcollab__threads').toJSON(), users: doc.getMap('__tiptapcollab__users').toJSON() }
  },
  async waitThreads ({ count, timeout }) {
    const threads = doc.getArray('__tiptapcollab__threads')
    await waitFor(() => threads.length === count, timeout ?? 10000)
    return { threads: threads.toJSON() }
  },
  async waitSaved ({ timeout }) { await waitFor(() => provider.synced && provider.unsyncedChanges === 0, timeout ?? 10000); return {} },
  unsynced () { return { unsynced: provider.unsyncedChanges, synced: provider.synced } },
  forceSync () { provider.forceSync(); return { unsynced: provider.unsyncedChanges } },
  stateless ({ payload }) { provider.sendStateless(payload); return {} },
  insert ({ index, value }) { text.insert(index ?? text.length, value); return {} },
  burst ({ n }) { for (let i = 0; i < n; i++) text.insert(text.length, `${i};`); return {} },
  paragraph ({ value }) {
    const p = new Y.XmlElement('paragraph')
    p.insert(0, [new Y.XmlText(value)])
    fragment.insert(fragment.length, [p])
    return {}
  },
  read () { return { text: text.toString(), xml: xmlPlain(), history } },
  awareness ({ state }) { provider.awareness.setLocalState(state); return {} },
  states () { return { states: states() } },
  async waitText ({ equals, timeout }) { await waitFor(() => text.toString() === equals, timeout ?? 10000); return {} },
  async waitXml ({ equals, timeout }) { await waitFor(() => xmlPlain() === equals, timeout ?? 10000); return {} },
  async waitPeers ({ count, timeout }) { await waitFor(() => states().length === count, timeout ?? 10000); return { states: states() } },
  disconnect () { provider.disconnect(); return {} },
  reconnect () { provider.connect(); return {} },
  async waitLength ({ length, timeout }) { await waitFor(() => text.length === length, timeout ?? 10000); return { text: text.toString() } },
  quit () { provider.destroy(); setTimeout(() => process.exit(0), 10); return {} }
}

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const { id, cmd, ...args } = JSON.parse(line)
  try {
    emit({ id, ...(await commands[cmd](args)) })
  } catch (err) {
    emit({ id, error: String(err && err.message) })
  }
})
