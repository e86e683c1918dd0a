// Presence: this tab's status in awareness (active, typing, idle, away) from input activity,
// and everyone's, read back from awareness for the active-users list and "X is typing".

import type { Awareness } from 'y-protocols/awareness'

export type Status = 'active' | 'typing' | 'idle' | 'away'

const TYPING_MS = 2_000
const IDLE_MS = 60_000
const AWAY_MS = 5 * 60_000
const TICK_MS = 1_000
// A remote 'typing' is shown only while that client is heard from. A live typer is heard with each
// key (its caret moves) or, failing that, each tick (below), and its own 'typing' lapses TYPING_MS
// after its last key; the gateway holds an awareness update up to 100 ms. So silence past TYPING_MS
// plus 1 s (the throttle, delivery, a busy main thread) means it stopped typing or its network
// dropped; y-protocols only forgets a silent client after 30 s.
const HEARD_TYPING_MS = TYPING_MS + 1_000
// Any status is believed only while its client is heard from: y-protocols renews a live client's
// state 15 s after its last change (checked every 3 s: at most 18 s apart, plus the gateway's
// 100 ms and delivery). One unheard for longer lost its network without a close: away until it is
// heard again, not active until y-protocols forgets it (30 s) or the server closes its socket.
const HEARD_MS = 20_000
export const PRESENCE_TICK_MS = TICK_MS

export interface Collaborator {
  clientId: number
  id: string
  name: string
  color: string
  status: Status
  self: boolean
}

/** Publishes the local status; awareness is only touched when the status changes. */
export function trackActivity(
  awareness: Awareness,
  editorRoot: HTMLElement,
  beforePublish: () => void = () => {},
  documentNow: () => unknown = () => null,
): () => void {
  let lastInput = Date.now()
  let lastKey = 0
  let published: Status | null = null

  const statusNow = (now: number): Status => {
    if (document.visibilityState === 'hidden' || now - lastInput >= AWAY_MS) return 'away'
    if (now - lastKey < TYPING_MS) return 'typing'
    return now - lastInput >= IDLE_MS ? 'idle' : 'active'
  }
  const publish = (): void => {
    const now = Date.now()
    const status = statusNow(now)
    if (status === 'typing' && published === 'typing' && now - lastUpdated(awareness, now) >= TICK_MS) {
      // Keys that leave the caret where it was (Delete) send nothing: renew so readers still hear us.
      awareness.setLocalStateField('status', status)
    }
    if (status === published) return
    published = status
    beforePublish() // the change redraws the carets: a click not yet read would be undone
    awareness.setLocalStateField('status', status)
    awareness.setLocalStateField('lastActivity', lastInput)
  }
  const onInput = (): void => {
    lastInput = Date.now()
    publish()
  }
  // Tab indents a list item or adds a table's row, or moves the focus or the caret between
  // cells: which, the editor decides in its own keydown handler, between these two listeners
  // (capture before it, bubble after). The letter's document is immutable: a change replaces it.
  let before: unknown = null
  const onKeyFirst = (event: KeyboardEvent): void => {
    before = event.key === 'Tab' && takesInput(event.target) ? documentNow() : null
  }
  const onKey = (event: KeyboardEvent): void => {
    const tabbed = before !== null && documentNow() !== before
    before = null
    if (tabbed || changesLetter(event)) lastKey = Date.now()
    onInput()
  }
  // What the browser writes itself (typed text, an IME's or a phone keyboard's composition, which
  // report key "Process" or "Unidentified", AltGr or Option characters) comes as `input` too.
  const onWrite = (event: Event): void => {
    if (takesInput(event.target)) lastKey = Date.now()
    onInput()
  }

  const inputs: [EventTarget, string, EventListener][] = [
    [editorRoot, 'keydown', onKey as EventListener],
    [editorRoot, 'input', onWrite],
    [window, 'pointerdown', onInput],
    [window, 'pointermove', onInput],
    [window, 'focus', onInput],
    [document, 'visibilitychange', onInput],
  ]
  for (const [target, type, listener] of inputs) target.addEventListener(type, listener, { passive: true })
  editorRoot.addEventListener('keydown', onKeyFirst as EventListener, { capture: true, passive: true })
  const timer = setInterval(publish, TICK_MS)
  publish()
  return () => {
    clearInterval(timer)
    for (const [target, type, listener] of inputs) target.removeEventListener(type, listener)
    editorRoot.removeEventListener('keydown', onKeyFirst as EventListener, { capture: true })
  }
}

// With Ctrl or Cmd, the keys whose shortcut edits (TipTap's keymaps, the browser's paste and cut):
// paste, cut, undo, redo, bold, italic, underline, code, subscript, superscript.
// Matched by the key's place (`code`) only when the key is no ASCII character: on a Cyrillic or
// Greek layout Ctrl+V reports its own letter, where Dvorak's Ctrl+C is at QWERTY's I.
const EDITING_SHORTCUTS = new Set(['v', 'x', 'z', 'y', 'b', 'i', 'u', 'e', ',', '.'])
const EDITING_CODES = new Set([
  'KeyV',
  'KeyX',
  'KeyZ',
  'KeyY',
  'KeyB',
  'KeyI',
  'KeyU',
  'KeyE',
  'Comma',
  'Period',
])
// With any modifier: Shift+Enter is a line break, Ctrl+Backspace deletes a word.
const EDITING_KEYS = new Set(['Enter', 'Backspace', 'Delete'])

/** Whether a key may change the letter: "typing" to the colleagues. Copying, selecting, finding,
 * moving the caret do not; no key does in a letter that does not take input (a read-only role's,
 * `aria-readonly`: read-only.ts; one refused for good, not editable). */
export function changesLetter(event: KeyboardEvent): boolean {
  if (!takesInput(event.target)) return false
  if (EDITING_KEYS.has(event.key)) return true
  if (event.key.length !== 1) return false // arrows, Tab (trackActivity), Escape, F-keys, a modifier alone
  // A character; with Alt alone an app shortcut (Alt+Shift+L locks) or an Option character,
  // which its `input` counts.
  if (!event.ctrlKey && !event.metaKey) return !event.altKey
  // With Shift or Alt too, every TipTap shortcut formats (strike, highlight, headings, lists,
  // alignment), and AltGr (Ctrl+Alt on Windows) types a character.
  return (
    event.shiftKey ||
    event.altKey ||
    EDITING_SHORTCUTS.has(event.key.toLowerCase()) ||
    (!ASCII.test(event.key) && EDITING_CODES.has(event.code))
  )
}

const ASCII = /^[\x20-\x7e]$/

function takesInput(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLElement &&
    target.isContentEditable &&
    target.closest('[aria-readonly="true"]') === null
  )
}

export function collaborators(awareness: Awareness, now = Date.now()): Collaborator[] {
  const people: Collaborator[] = []
  for (const [clientId, state] of awareness.getStates()) {
    const user = state.user as { id?: string; name?: string; color?: string } | undefined
    if (!user?.name) continue
    const self = clientId === awareness.clientID
    let status: Status = isStatus(state.status) ? state.status : 'active'
    // Not heard lately: its network may be gone (no close reached the server).
    const unheard = self ? 0 : now - lastUpdated(awareness, now, clientId)
    if (unheard > HEARD_MS) status = 'away'
    else if (status === 'typing' && unheard > HEARD_TYPING_MS) status = 'active'
    people.push({
      clientId,
      id: user.id ?? String(clientId),
      name: user.name,
      color: user.color ?? '#888888',
      status,
      self,
    })
  }
  return dedupeByUser(people)
}

/** When a client's awareness last changed its clock (here: sent, or received from a peer). */
function lastUpdated(awareness: Awareness, now: number, clientId = awareness.clientID): number {
  return awareness.meta.get(clientId)?.lastUpdated ?? now
}

/** One row per person: the same user in two tabs shows once, with their liveliest status. */
function dedupeByUser(people: Collaborator[]): Collaborator[] {
  const rank: Record<Status, number> = { typing: 0, active: 1, idle: 2, away: 3 }
  const byUser = new Map<string, Collaborator>()
  for (const person of people) {
    const seen = byUser.get(person.id)
    const self = person.self || Boolean(seen?.self)
    const liveliest = !seen || rank[person.status] < rank[seen.status] ? person : seen
    byUser.set(person.id, { ...liveliest, self })
  }
  return [...byUser.values()].sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name))
}

function isStatus(value: unknown): value is Status {
  return value === 'active' || value === 'typing' || value === 'idle' || value === 'away'
}

export function typingLine(people: Collaborator[]): string {
  const names = people.filter((p) => !p.self && p.status === 'typing').map((p) => p.name)
  if (names.length === 0) return ''
  if (names.length === 1) return `${names[0]} is typing…`
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`
  return `${names.length} people are typing…`
}
