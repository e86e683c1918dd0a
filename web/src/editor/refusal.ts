// A close the server means as final (y-websocket does not reconnect after it, collab.ts) and
// after which typing could not be saved: the letter grew past the server's document limit
// (4413), the update was refused as malformed (4400), access was revoked (4403). The editor
// goes read-only with a message saying so, and a button tries the connection again (the letter
// may have shrunk, access may be back). An expired token (4401) is not here: the host hands a
// new one and the edits typed meanwhile are sent with it.

import type { Editor } from '@tiptap/core'
import type { WebsocketProvider } from 'y-websocket'

import { h } from '../dom'

const REFUSALS: Record<number, string> = {
  4400: 'The server refused an edit of this letter as malformed.',
  4403: 'Your access to this letter was revoked.',
  4413: 'The letter has reached the size the server accepts.',
}
const UNSAVED = 'The editor is read-only: what you type now could not be saved.'

export function refusalNotice(
  provider: WebsocketProvider,
  editor: Editor,
): { element: HTMLElement; stop(): void } {
  const text = h('span', { class: 'refusal-text' })
  const retry = h('button', { type: 'button', class: 'retry' }, 'Try again')
  const element = h('div', { class: 'refusal', role: 'alert', hidden: true }, text, ' ', retry)
  let refused = false

  const onClosed = (event: { code: number }): void => {
    const why = REFUSALS[event.code]
    if (!why) return
    refused = true
    if (!editor.isDestroyed) editor.setEditable(false)
    text.textContent = `${why} ${UNSAVED}`
    element.dataset.code = String(event.code)
    element.hidden = false
    retry.disabled = false
  }
  const onSync = (synced: boolean): void => {
    if (!synced || !refused) return
    refused = false
    element.hidden = true
    if (!editor.isDestroyed) editor.setEditable(true) // every role's, a reader's kept unchanged by read-only.ts
  }
  retry.addEventListener('click', () => {
    retry.disabled = true // until this attempt is refused again, or syncs
    text.textContent = 'Connecting again…'
    provider.connect()
  })
  provider.on('closed', onClosed)
  provider.on('sync', onSync)
  return {
    element,
    stop() {
      provider.off('closed', onClosed)
      provider.off('sync', onSync)
    },
  }
}
