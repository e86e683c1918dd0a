// The collaborative document: a Y.Doc synced over y-websocket with the gateway, and the
// TipTap editor bound to it (Collaboration for content, CollaborationCaret for carets).

import { Editor } from '@tiptap/core'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

import type { Session } from '../auth'
import { commentAnchors } from './anchors'
import { readInputBeforeMessages, readPendingInputFirst } from './pending-input'
import { documentExtensions } from './schema'
import { readOnly } from './read-only'
import { recentEdits } from './recent-edits'
import { autoDirection } from './text-direction'
import { undoGrouping } from './undo-grouping'
import { narrowRemoteChanges } from './remote-changes'
import { caretInReplacedBlock } from './replaced-block'
import { typingAtCaret } from './caret-run'
import { wordPaste } from './word-paste'
import { Writers } from './writers'

export interface Collab {
  ydoc: Y.Doc
  provider: WebsocketProvider
  editor: Editor
  /** REST writers the gateway named (`doc.writer` app messages): the edit highlights read it. */
  writers: Writers
  destroy(): void
}

/** Tiptap's Collaboration extension binds this XmlFragment; the server knows it as doc_field. */
export const DOC_FIELD = 'default'

export const WRITER_ROLES = new Set(['editor', 'service'])

// The same palette and rule as the gateway (gateway/live/presence.py), so your own caret has the
// colour your collaborators see. The gateway's stamp is authoritative for everyone else.
const PALETTE = [
  '#e6194b',
  '#3cb44b',
  '#4363d8',
  '#f58231',
  '#911eb4',
  '#42d4f4',
  '#f032e6',
  '#469990',
  '#9a6324',
  '#800000',
  '#808000',
  '#000075',
]

export async function userColor(userId: string): Promise<string> {
  if (!globalThis.crypto?.subtle) return PALETTE[2]! // not a secure context: any stable colour
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(userId))
  return PALETTE[new Uint8Array(digest)[0]! % PALETTE.length]!
}

// y-websocket 3.1 takes every 44xx close as final. Rate limiting (4429) is not: the connection
// comes back after the provider's backoff and resends what the server had not confirmed.
// Malformed (4400), too large (4413), revoked (4403) and expired (4401, until the host hands a
// new token) stay closed: reconnecting would only be refused again.
const RATE_LIMITED = 4429
const shouldReconnect = (event: CloseEvent): boolean =>
  event.code === RATE_LIMITED || !(event.code >= 4400 && event.code < 4500)

export function connect(session: Session, letterId: string, mount: HTMLElement, color: string): Collab {
  const ydoc = new Y.Doc()
  // Exactly the seed's provider call (plus events=1 for the app channel). Cross-tab
  // BroadcastChannel sync is off: every edit must reach the server under its own token, or a
  // viewer's tab could edit through an editor's tab of the same browser.
  const provider = new WebsocketProvider(
    location.origin.replace(/^http/, 'ws') + '/v1',
    'letter-' + letterId,
    ydoc,
    { params: { token: session.token, letterId, events: '1' }, disableBc: true, shouldReconnect },
  )
  const user = { id: session.claims.sub, name: session.claims.name, color }
  const writer = WRITER_ROLES.has(session.claims.role)
  const writers = new Writers()
  const editor = new Editor({
    element: mount,
    // Read-only until the first sync: text typed into the blank page before the letter arrives
    // would merge into it as a stray paragraph, or land in the wrong one.
    editable: false,
    extensions: [
      ...documentExtensions,
      Collaboration.configure({ document: ydoc, field: DOC_FIELD }),
      CollaborationCaret.configure({ provider, user, render: renderCaret }),
      recentEdits(provider, writers),
      commentAnchors,
      autoDirection,
      undoGrouping,
      narrowRemoteChanges, // a colleague's keystroke replaces its blocks, not the whole letter
      caretInReplacedBlock, // a colleague's change of your block's type keeps your caret in it
      typingAtCaret, // what is typed is credited to the caret's place in Yjs (caret-diff.ts)
      readPendingInputFirst,
      wordPaste,
      ...(writer ? [] : [readOnly]), // a caret and keyboard selection, the letter unchanged
    ],
    editorProps: {
      attributes: {
        class: 'letter-body',
        role: 'textbox',
        'aria-multiline': 'true',
        'aria-label': 'Letter text',
      },
    },
  })
  const firstSync = (synced: boolean): void => {
    if (!synced) return
    provider.off('sync', firstSync)
    if (!editor.isDestroyed) editor.setEditable(true)
  }
  provider.on('sync', firstSync)
  repairAwarenessAfterDrop(provider)
  readInputBeforeMessages(provider, () => (editor.isDestroyed ? null : editor.view))
  return {
    ydoc,
    provider,
    editor,
    writers,
    destroy() {
      editor.destroy()
      provider.destroy()
      ydoc.destroy()
    },
  }
}

/**
 * What a dropped connection leaves wrong in awareness, put right at the 'disconnected' status
 * (y-websocket emits it right after removing the remote states, in closeWebsocketConnection),
 * so that both sides list each other again as soon as the reconnect's states arrive:
 *
 * 1. Remote clocks: y-websocket removed every remote client's state but y-protocols keeps its
 *    clock (`awareness.meta`). After the reconnect the gateway sends those states again with
 *    the same clocks, which `applyAwarenessUpdate` ignores: colleagues vanished from "Here now"
 *    (and their carets) until their next renewal, up to ~18 s, while the badge said Connected.
 *    Forgetting the clocks of the clients without a state makes the re-sent states apply at
 *    once; what the server sends after the reconnect is the truth anyway.
 * 2. Our own clock: the gateway tells colleagues this page left with a null state at its clock
 *    c; after the reconnect y-websocket re-sends the local state at that same clock c, which the
 *    gateway drops as an echo and peers would ignore anyway: colleagues lost this page and its
 *    caret until its next renewal (~15 s). Re-setting the local state now bumps the clock to
 *    c+1 while nothing can be sent (y-websocket only sends when connected), so the reconnect's
 *    own awareness send (in its onopen, after the sync step 1) carries c+1 exactly once.
 *    Bumping on 'connected' instead would send c+1 before the sync step 1, then onopen's copy.
 */
function repairAwarenessAfterDrop(provider: WebsocketProvider): void {
  const { awareness } = provider
  provider.on('status', ({ status }) => {
    if (status !== 'disconnected') return
    for (const clientId of [...awareness.meta.keys()]) {
      if (clientId !== awareness.clientID && !awareness.states.has(clientId)) awareness.meta.delete(clientId)
    }
    const own = awareness.getLocalState()
    if (own !== null) awareness.setLocalState(own)
  })
}

function renderCaret(user: Record<string, unknown>): HTMLElement {
  const color = typeof user.color === 'string' ? user.color : '#666'
  const name = typeof user.name === 'string' ? user.name : 'Someone'
  const caret = document.createElement('span')
  caret.className = 'collaboration-carets__caret'
  caret.style.borderColor = color
  const label = document.createElement('span')
  label.className = 'collaboration-carets__label'
  label.style.backgroundColor = color
  label.textContent = name
  label.setAttribute('aria-hidden', 'true')
  caret.append(label)
  return caret
}
