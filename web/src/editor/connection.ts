// Connection state for the header badge: connected, reconnecting, offline with edits pending,
// or closed for good (token expired, access revoked).
//
// "Pending" is exact, not guessed: the gateway echoes every update back once it is in the log
// (DESIGN.md "Echo is the acknowledgement"), so a shadow Y.Doc that receives only what the
// server sent is the confirmed state. Local edits are pending while the local document's
// snapshot (state vector + delete set) differs from the shadow's.
//
// Edits made while disconnected travel in the sync step 2 of the reconnect, which the gateway
// logs but does not echo. So once synced, whatever is still unconfirmed is sent again as a
// plain update: applying it twice changes nothing (Yjs updates are idempotent), and its echo
// confirms it.

import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import type { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

import { WRITER_ROLES } from './collab'

const MESSAGE_SYNC = 0
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2

export type LinkState = 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'closed'

export interface ConnectionView {
  link: LinkState
  synced: boolean
  pending: boolean
  closeReason: string | null
}

/** What signing in again after an expired session gives back, worded by `role`: only a writer
 * types, and a reader's letter stops following the others' edits meanwhile. */
export function afterSignIn(role: string): string {
  if (WRITER_ROLES.has(role)) return 'keep editing'
  return role === 'commenter' ? 'comment and see new changes' : 'see new changes'
}

// Close codes of DESIGN.md "Wire protocol" that a person can act on (`role`: the 4401's wording).
const closeReasons = (role: string): Record<number, string> => ({
  4401: `Your session expired. Sign in again to ${afterSignIn(role)}`,
  4403: 'Your access to this letter was revoked',
  4413: 'The letter is too large for the server; edits cannot be saved',
  4429: 'Too many edits at once; reconnecting shortly',
  4503: 'The server could not store an edit; reconnecting to resend it',
  1001: 'The server is restarting; reconnecting',
})

type SyncHandler = (
  encoder: unknown,
  decoder: decoding.Decoder,
  provider: WebsocketProvider,
  emitSynced: boolean,
  messageType: number,
) => void

export interface Tracked {
  /** Resolves once the server has confirmed every edit this tab holds now and since ("all
   * changes saved"): what is saved after that (a named version) includes them. Null when it
   * has already. */
  untilConfirmed(): Promise<void> | null
  stop(): void
}

export function trackConnection(
  provider: WebsocketProvider,
  onChange: (view: ConnectionView) => void,
  role: string,
): Tracked {
  const CLOSE_REASONS = closeReasons(role)
  const confirmed = new Y.Doc()
  let waiters: (() => void)[] = []
  let everConnected = false
  const view: ConnectionView = { link: 'connecting', synced: false, pending: false, closeReason: null }
  const emit = (): void => onChange({ ...view })

  const linkNow = (): LinkState => {
    if (view.link === 'closed') return 'closed'
    // The browser knows it is offline before the socket notices (y-websocket waits 30 s).
    if (!navigator.onLine) return 'offline'
    if (provider.wsconnected) return 'connected'
    return everConnected ? 'reconnecting' : 'connecting'
  }
  const unconfirmed = (): boolean => !Y.equalSnapshots(Y.snapshot(provider.doc), Y.snapshot(confirmed))
  const recompute = (): void => {
    const pending = unconfirmed()
    if (!pending && waiters.length) {
      const ready = waiters
      waiters = []
      for (const resolve of ready) resolve()
    }
    const link = linkNow()
    if (pending !== view.pending || link !== view.link || provider.synced !== view.synced) {
      Object.assign(view, { pending, link, synced: provider.synced })
      emit()
    }
  }

  const handlers = provider.messageHandlers as unknown as SyncHandler[]
  const original = handlers[MESSAGE_SYNC]!
  handlers[MESSAGE_SYNC] = (encoder, decoder, p, emitSynced, type) => {
    // Into the shadow first: the provider emits `sync` from inside `original`, and `onSync`
    // must see the step 2 as confirmed, or it resends the whole letter on every open.
    const update = serverUpdate(decoder)
    if (update) Y.applyUpdate(confirmed, update)
    original(encoder, decoder, p, emitSynced, type)
    recompute()
  }

  let scheduled = 0
  const onLocalUpdate = (_update: Uint8Array, origin: unknown): void => {
    if (origin === provider || scheduled) return
    // One snapshot comparison per frame, however fast someone types.
    scheduled = requestAnimationFrame(() => {
      scheduled = 0
      recompute()
    })
  }
  const onStatus = ({ status }: { status: string }): void => {
    if (status === 'connected') {
      everConnected = true
      view.closeReason = null
    }
    if (status !== 'disconnected' && view.link === 'closed') view.link = 'connecting' // renewed token
    recompute()
  }
  const onClose = (event: CloseEvent | null): void => {
    view.closeReason = (event && CLOSE_REASONS[event.code]) ?? null
    recompute()
    emit() // the reason may be all that changed
  }
  const onClosed = (event: { code: number; reason: string }): void => {
    view.link = 'closed'
    view.closeReason =
      CLOSE_REASONS[event.code] ?? `Disconnected by the server (${event.code} ${event.reason})`
    emit()
  }
  const onSync = (synced: boolean): void => {
    recompute()
    if (synced && view.pending) resend(provider, confirmed)
  }
  provider.doc.on('update', onLocalUpdate)
  provider.on('status', onStatus)
  provider.on('sync', onSync)
  provider.on('connection-close', onClose)
  provider.on('closed', onClosed)
  window.addEventListener('online', recompute)
  window.addEventListener('offline', recompute)
  emit()
  const stop = (): void => {
    handlers[MESSAGE_SYNC] = original
    provider.doc.off('update', onLocalUpdate)
    provider.off('status', onStatus)
    provider.off('sync', onSync)
    provider.off('connection-close', onClose)
    provider.off('closed', onClosed)
    window.removeEventListener('online', recompute)
    window.removeEventListener('offline', recompute)
    cancelAnimationFrame(scheduled)
    confirmed.destroy()
    waiters = [] // the letter is closed: nothing waiting on it goes ahead
  }
  return {
    // Checked now, not from the last view: a keystroke's recompute waits for the next frame.
    untilConfirmed: () => (unconfirmed() ? new Promise<void>((resolve) => void waiters.push(resolve)) : null),
    stop,
  }
}

/** What the server has not confirmed, as one update message (see the header comment). */
function resend(provider: WebsocketProvider, confirmed: Y.Doc): void {
  const missing = Y.encodeStateAsUpdate(provider.doc, Y.encodeStateVector(confirmed))
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_SYNC)
  syncProtocol.writeUpdate(encoder, missing)
  provider.ws?.send(encoding.toUint8Array(encoder))
}

/** The update carried by a sync step 2 or update message, read without consuming it. */
function serverUpdate(decoder: decoding.Decoder): Uint8Array | null {
  const peek = decoding.clone(decoder)
  const kind = decoding.readVarUint(peek)
  return kind === SYNC_STEP2 || kind === SYNC_UPDATE ? decoding.readVarUint8Array(peek) : null
}

export function describe(view: ConnectionView): { label: string; tone: 'ok' | 'busy' | 'warn' | 'bad' } {
  // Pending edits live only in this tab's memory (letters are never stored in the browser):
  // closing or reloading the tab loses them, which the page warns about (beforeunload), and
  // the badge says so whatever closed the link (an expired token no host renews, too).
  const unsaved = ' · edits pending, not saved: keep this tab open'
  if (view.link === 'closed')
    return { label: (view.closeReason ?? 'Disconnected') + (view.pending ? unsaved : ''), tone: 'bad' }
  // Connected but not synced: a reconnect the server has not loaded the letter for yet (or
  // cannot, while its log is down, closing the link again after its append timeout).
  if (view.link === 'connected' && !view.synced)
    return view.pending
      ? { label: 'Loading letter' + unsaved, tone: 'warn' }
      : { label: 'Loading letter…', tone: 'busy' }
  if (view.link === 'connected')
    return view.pending
      ? { label: 'Saving…', tone: 'busy' }
      : { label: 'Connected · all changes saved', tone: 'ok' }
  const where =
    view.link === 'offline' ? 'Offline' : view.link === 'connecting' ? 'Connecting' : 'Reconnecting'
  const label =
    view.link === 'offline' ? 'Offline' : (view.closeReason ?? (view.pending ? where : `${where}…`))
  return { label: view.pending ? label + unsaved : label, tone: 'warn' }
}
