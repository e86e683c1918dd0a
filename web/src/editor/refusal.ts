// A close the server means as final (y-websocket does not reconnect after it, collab.ts) and
// after which typing could not be saved: the letter grew past the server's document limit
// (4413), the update was refused as malformed (4400), access was revoked (4403), the token
// expired (4401) with no host page to hand a new one. The editor goes read-only with a message
// saying so, and a button tries the connection again (the letter may have shrunk, access may be
// back). After 4401 a host page (auth.ts `hostWindow`) may still hand a new token, and the
// edits typed meanwhile are sent with it: the editor stays editable for RENEWAL_WAIT_MS, then
// goes read-only as well (a later token still brings it back). An expired token has no "try
// again" (the same token is refused again): the edits not saved stay on screen, and a button
// copies the letter's text so they are not lost with the tab.

import type { Editor } from '@tiptap/core'
import type { WebsocketProvider } from 'y-websocket'

import { h } from '../dom'
import { WRITER_ROLES } from './collab'
import { afterSignIn } from './connection'

const EXPIRED = 4401
const REVOKED = 4403
const REFUSALS: Record<number, string> = {
  4400: 'The server refused an edit of this letter as malformed.',
  [REVOKED]: 'Your access to this letter was revoked.',
  4413: 'The letter has reached the size the server accepts.',
}
const UNSAVED = 'The editor is read-only: what you type now could not be saved.'
const RENEWAL_WAIT_MS = 10_000

export interface RefusalOptions {
  /** The user's role: the expired session's wording (only a writer types). */
  role: string
  /** A host page may hand a new token (wait for it before going read-only). */
  renewable: boolean
  /** Local edits the server has not confirmed. */
  pending(): boolean
  /** The session is over (expired, revoked: `why`) or back (null): other controls follow. */
  onSession(why: string | null): void
}

export function refusalNotice(
  provider: WebsocketProvider,
  editor: Editor,
  options: RefusalOptions,
): { element: HTMLElement; stop(): void } {
  const text = h('span', { class: 'refusal-text' })
  const retry = h('button', { type: 'button', class: 'retry' }, 'Try again')
  const copy = h('button', { type: 'button', class: 'copy-text', hidden: true }, 'Copy the letter’s text')
  const element = h('div', { class: 'refusal', role: 'alert', hidden: true }, text, ' ', retry, ' ', copy)
  let refused = false
  let waiting = 0

  const refuse = (code: number, why: string): void => {
    refused = true
    if (!editor.isDestroyed) editor.setEditable(false)
    text.textContent = why
    element.dataset.code = String(code)
    element.hidden = false
    retry.hidden = code === EXPIRED
    retry.disabled = false
    copy.hidden = code !== EXPIRED
    if (code === EXPIRED || code === REVOKED) options.onSession(why)
  }
  const expired = (): void => {
    waiting = 0
    if (!WRITER_ROLES.has(options.role))
      return refuse(
        EXPIRED,
        `Your session expired: the letter no longer shows others' changes. Sign in again to ${afterSignIn(options.role)}.`,
      )
    const unsaved = options.pending()
      ? 'Your last edits were not saved: they are still shown here, copy them before you reload or sign in again.'
      : 'Everything you typed before was saved: sign in again to keep editing.'
    refuse(EXPIRED, `Your session expired and the editor is read-only. ${unsaved}`)
  }
  const onClosed = (event: { code: number }): void => {
    if (event.code === EXPIRED) {
      if (!options.renewable) expired()
      else if (!waiting) waiting = window.setTimeout(expired, RENEWAL_WAIT_MS)
      return
    }
    const why = REFUSALS[event.code]
    if (why) refuse(event.code, `${why} ${UNSAVED}`)
  }
  const onSync = (synced: boolean): void => {
    if (!synced) return
    clearTimeout(waiting) // a renewed token came in time
    waiting = 0
    if (!refused) return
    refused = false
    element.hidden = true
    options.onSession(null)
    if (!editor.isDestroyed) editor.setEditable(true) // every role's, a reader's kept unchanged by read-only.ts
  }
  retry.addEventListener('click', () => {
    retry.disabled = true // until this attempt is refused again, or syncs
    text.textContent = 'Connecting again…'
    provider.connect()
  })
  copy.addEventListener('click', () => {
    const letter = editor.getText({ blockSeparator: '\n' })
    const selectIt = (): void => {
      // No clipboard (an insecure origin, permission refused): selected, for Ctrl+C.
      editor.chain().focus().selectAll().run()
      copy.textContent = 'Selected: press Ctrl+C to copy'
    }
    if (!navigator.clipboard) return selectIt()
    navigator.clipboard.writeText(letter).then(() => (copy.textContent = 'Copied'), selectIt)
  })
  provider.on('closed', onClosed)
  provider.on('sync', onSync)
  return {
    element,
    stop() {
      clearTimeout(waiting)
      provider.off('closed', onClosed)
      provider.off('sync', onSync)
    },
  }
}
