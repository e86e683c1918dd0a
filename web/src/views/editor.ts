// One letter open for editing: the document, who is here and what they are doing, the
// connection state, and the comments and history side panels.

import type { Editor } from '@tiptap/core'
import { yUndoPluginKey } from '@tiptap/y-tiptap'
import type { WebsocketProvider } from 'y-websocket'

import { ApiError, type Api } from '../api'
import { decodeClaims, devMinted, hostWindow, type Session } from '../auth'
import { h, initials, replaceChildren } from '../dom'
import { rememberLetter } from '../recent'
import { actorId, actorName, onAppMessage, sendAppMessage, type AppMessage } from '../editor/appchannel'
import { connect, userColor, WRITER_ROLES } from '../editor/collab'
import { commentsPanel, type Person } from '../editor/comments'
import { describe, trackConnection, type LinkState } from '../editor/connection'
import { AUDITOR_ROLES, historyPanel } from '../editor/history'
import { sectionLocks } from '../editor/locks'
import { refusalNotice } from '../editor/refusal'
import { versionSaver } from '../editor/save-version'
import { readPendingInput } from '../editor/pending-input'
import {
  collaborators,
  PRESENCE_TICK_MS,
  trackActivity,
  typingLine,
  type Collaborator,
} from '../editor/presence'
import { MENTIONED } from './mentions'

const SAVING_AFTER_MS = 800
const EXPIRED = 4401
const EXPIRY_SLACK_MS = 5_000 // the gateway's clock may run a little ahead of this one

export interface Mounted {
  element: HTMLElement
  /** Use a fresh token of the same user: reconnect with it if the server closed the socket. */
  renew(session: Session): void
  /** Edits the server has not confirmed yet: leaving the letter would lose them. */
  pending(): boolean
  /** Comment or reply text not sent: leaving the letter would lose it too. */
  unsent(): boolean
  /** Open the comments panel on this thread and show its text in the letter (a mention). */
  showThread(threadId: string): void
  destroy(): void
}

/** `focus`: put the caret in the letter once it has arrived (it was just created). `remint`: in
 * dev mode, get this tab's next token from /dev/token (it comes back through `renew`). */
export async function editorView(
  api: Api,
  session: Session,
  letterId: string,
  focus = false,
  remint: () => void = () => {},
): Promise<Mounted> {
  let title = 'Untitled letter'
  try {
    title = (await api.getLetter(letterId)).title || title
  } catch (error) {
    if (error instanceof ApiError && [403, 404].includes(error.status)) return refused(letterId)
    // Any other failure: the WebSocket may still work; the title is cosmetic.
  }
  rememberLetter(session.claims.firmId, { letter_id: letterId, title })
  document.title = `${title} · Steno Collab`

  const mount = h('div', { class: 'editor-mount' })
  const collab = connect(session, letterId, mount, await userColor(session.claims.sub))
  // "Here now" follows the badge's link, not the socket: offline (the browser knows at once, the
  // socket only after y-websocket's 30 s), nobody's presence is current.
  let link: LinkState = 'connecting'
  const presence = presencePanel(
    collab.provider,
    () => link === 'connected',
    mount,
    () => readPendingInput(collab.editor.isDestroyed ? null : collab.editor.view),
    () => (collab.editor.isDestroyed ? null : collab.editor.state.doc),
  )
  const badge = connectionBadge(collab.provider, session.claims.role, (next) => {
    link = next
    presence.render()
  })
  const notices = h('ul', { class: 'notices', 'aria-live': 'polite', 'aria-label': 'Recent activity' })
  const people = (): Person[] => knownPeople(collaborators(collab.provider.awareness), session)
  const comments = commentsPanel(api, letterId, collab.editor, session.claims, people)
  // Unsaved edits and unsent comments exist only in this tab: ask before it is closed or reloaded.
  const warnOnLeave = (event: BeforeUnloadEvent): void => {
    if (!badge.pending() && !comments.unsent()) return
    event.preventDefault()
    event.returnValue = '' // older browsers need it set to show the prompt
  }
  window.addEventListener('beforeunload', warnOnLeave)
  const nameOf = (id: string): string => people().find((p) => p.id === id)?.name ?? id
  const history = historyPanel(api, letterId, collab.editor, nameOf, session.claims.role)
  const locks = sectionLocks(api, letterId, collab.editor, session, collab.provider)
  const readOnly = !WRITER_ROLES.has(session.claims.role)
  // The roles the server lets save a version (gateway/auth.py WRITERS): a service sees the list too.
  const saver = readOnly
    ? null
    : versionSaver(
        api,
        letterId,
        AUDITOR_ROLES.has(session.claims.role),
        (label) => void history.saved(label),
        badge.untilConfirmed,
      )
  // Every role's letter takes the caret again once synced (read-only.ts keeps it unchanged).
  // Expired or revoked: no comment or lock can be sent either (the server answers 401/403).
  // Dev mode: the token came from /dev/token, which mints the next one when it expires (only
  // then: a fresh token refused, a changed secret, is not minted again and again).
  const onExpired = ({ code }: { code: number }): void => {
    const exp = decodeClaims(String(collab.provider.params.token))?.exp ?? 0
    if (code === EXPIRED && devMinted() && exp * 1000 <= Date.now() + EXPIRY_SLACK_MS) remint()
  }
  collab.provider.on('closed', onExpired)
  const refusal = refusalNotice(collab.provider, collab.editor, {
    role: session.claims.role,
    renewable: hostWindow() !== null || devMinted(),
    pending: () => badge.pending(),
    onSession(why) {
      comments.setClosed(why)
      locks.setClosed(why)
      saver?.setClosed(why)
    },
  })
  const stopApp = onAppMessage(collab.provider, (message) => {
    if (message.type === 'comment.created' || message.type === 'comment.replied')
      void comments.refresh(String(message.comment_id))
    else if (message.type.startsWith('comment.')) void comments.refresh()
    if (message.type.startsWith('lock.')) locks.onMessage(message)
    if (message.type === 'doc.writer') collab.writers.note(message) // before its update: highlights
    if (message.type === 'notification') window.dispatchEvent(new Event(MENTIONED)) // the header's inbox
    const text = noticeText(message, session.claims.sub)
    if (text) pushNotice(notices, text)
  })
  void comments.refresh()
  // Anchors are marked in the document as it is when the threads arrive: if that was before the
  // letter itself, there was no text to mark, so mark them again once it is here.
  let letterArrived = false
  let threadWanted: string | null = null // asked for before the letter arrived
  const markOnSync = (synced: boolean): void => {
    if (!synced) return
    collab.provider.off('sync', markOnSync)
    letterArrived = true
    comments.markAnchors()
    if (focus && collab.editor.isEditable) collab.editor.commands.focus('end')
    if (threadWanted) comments.showThread(threadWanted)
  }
  collab.provider.on('sync', markOnSync)
  const sidePanels = tabs(
    [
      ['Comments', comments.element],
      ['History', history.element],
    ],
    (index) => {
      if (index === 1) void history.refresh()
    },
  )

  const element = h(
    'div',
    { class: 'editor-page' },
    h(
      'header',
      { class: 'letter-head' },
      h('a', { href: '#/', class: 'back' }, '← Letters'),
      h('h1', { class: 'letter-title' }, title),
      badge.element,
    ),
    h(
      'div',
      { class: 'workspace' },
      h(
        'div',
        { class: 'doc-column' },
        readOnly
          ? h('p', { class: 'readonly-note' }, `Read-only: your role is ${session.claims.role}.`)
          : toolbar(collab.editor),
        saver?.element,
        presence.typing,
        refusal.element,
        locks.warning,
        h('div', { class: 'page' }, mount),
        h('p', { class: 'muted small letter-id' }, 'Letter id: ', h('code', {}, letterId)),
      ),
      h(
        'aside',
        { class: 'sidebar', 'aria-label': 'Collaboration' },
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'users-heading' },
          h('h2', { id: 'users-heading' }, 'Here now'),
          presence.users,
          presence.stale,
          notices,
        ),
        locks.element,
        sidePanels.element,
      ),
    ),
  )
  return {
    element,
    renew(next) {
      // The next (re)connect uses it; an open connection takes it in place (`auth.renew`), so
      // it is not closed when the previous token expires. If that is refused, the 4401 at
      // expiry reconnects with the new token anyway.
      collab.provider.params.token = next.token
      api.use(next)
      sendAppMessage(collab.provider, { type: 'auth.renew', id: 'renew', token: next.token })
      if (!collab.provider.shouldConnect) collab.provider.connect()
    },
    pending: () => badge.pending(),
    unsent: () => comments.unsent(),
    showThread(threadId) {
      sidePanels.select(0)
      // Its text can be found once the letter is here.
      if (letterArrived) comments.showThread(threadId)
      else threadWanted = threadId
    },
    destroy() {
      window.removeEventListener('beforeunload', warnOnLeave)
      presence.stop()
      collab.provider.off('closed', onExpired)
      refusal.stop()
      badge.stop()
      stopApp()
      locks.destroy()
      collab.destroy()
    },
  }
}

/** The connection state, worded for people; data attributes carry it for tests and styles.
 * `onLink`: its link state, each time it is drawn. */
function connectionBadge(
  provider: WebsocketProvider,
  role: string,
  onLink: (link: LinkState) => void,
): {
  element: HTMLElement
  pending(): boolean
  /** Resolves once every edit of this tab is confirmed by the server (null: it is). */
  untilConfirmed(): Promise<void> | null
  stop(): void
} {
  const element = h('p', { class: 'connection', role: 'status', 'data-tone': 'busy' }, 'Connecting…')
  let calm = 0
  let pending = false
  const tracked = trackConnection(
    provider,
    (view) => {
      pending = view.pending
      const { label, tone } = describe(view)
      const show = (): void => {
        element.textContent = label
        element.dataset.tone = tone
      }
      element.dataset.link = view.link
      element.dataset.pending = String(view.pending)
      onLink(view.link)
      clearTimeout(calm)
      // Every keystroke is briefly unacknowledged: say "Saving…" only when it takes a while.
      if (view.pending && view.link === 'connected') calm = window.setTimeout(show, SAVING_AFTER_MS)
      else show()
    },
    role,
  )
  return {
    element,
    pending: () => pending,
    untilConfirmed: tracked.untilConfirmed,
    stop() {
      tracked.stop()
      clearTimeout(calm)
    },
  }
}

/** Who is here with their status, and "X is typing" (publishing this tab's own status). Not
 * connected as the badge says (`linked`: offline, reconnecting, or closed for good: an expired
 * token), nobody's presence reaches this tab, so the list does not claim any: your own row says
 * "disconnected" and the others are not shown (y-websocket forgets them at the close), with a
 * line saying why. `render`: the badge's link changed. */
function presencePanel(
  provider: WebsocketProvider,
  linked: () => boolean,
  editorRoot: HTMLElement,
  beforePublish: () => void,
  documentNow: () => unknown,
): { users: HTMLElement; typing: HTMLElement; stale: HTMLElement; render(): void; stop(): void } {
  const awareness = provider.awareness
  const users = h('ul', { class: 'users', 'aria-label': 'People in this letter' })
  const typing = h('p', { class: 'typing', 'aria-live': 'polite' })
  const stale = h(
    'p',
    { class: 'muted small presence-stale', hidden: true },
    'Not connected: who else is here is not known.',
  )
  let shown = ''
  const render = (): void => {
    const connected = linked()
    const present = collaborators(awareness)
    const everyone: Shown[] = connected
      ? present
      : present
          .filter((person) => person.self)
          .map((person) => ({ ...person, status: 'disconnected' as const }))
    const seen = JSON.stringify(everyone)
    if (seen === shown) return
    shown = seen
    stale.hidden = connected
    replaceChildren(users, ...everyone.map(userRow))
    const line = connected ? typingLine(present) : ''
    if (typing.textContent !== line) typing.textContent = line // aria-live: announce changes only
  }
  awareness.on('change', render) // the link's changes come from the badge (`render`)
  // A colleague's 'typing' also ends when he goes silent (presence.ts), which no message says.
  const ticker = setInterval(render, PRESENCE_TICK_MS)
  const stopActivity = trackActivity(awareness, editorRoot, beforePublish, documentNow)
  render()
  return {
    users,
    typing,
    stale,
    render,
    stop() {
      awareness.off('change', render)
      clearInterval(ticker)
      stopActivity()
    },
  }
}

function refused(letterId: string): Mounted {
  const element = h(
    'section',
    { class: 'card' },
    h('h1', {}, 'Letter not available'),
    h('p', {}, `The letter “${letterId}” does not exist or belongs to another firm.`),
    h('a', { href: '#/' }, '← Back to letters'),
  )
  return { element, renew() {}, pending: () => false, unsent: () => false, showThread() {}, destroy() {} }
}

/** A row of "Here now": a status from awareness, or this tab's own link lost. */
type Shown = Omit<Collaborator, 'status'> & { status: Collaborator['status'] | 'disconnected' }

const STATUS_LABEL: Record<Shown['status'], string> = {
  active: 'active',
  typing: 'typing',
  idle: 'idle',
  away: 'away',
  disconnected: 'disconnected',
}

function userRow(person: Shown): HTMLElement {
  return h(
    'li',
    { class: `user status-${person.status}`, 'data-name': person.name },
    h(
      'span',
      { class: 'avatar', style: `background:${person.color}`, 'aria-hidden': 'true' },
      initials(person.name),
    ),
    h(
      'span',
      { class: 'user-name' },
      person.name,
      person.self ? h('span', { class: 'muted' }, ' (you)') : null,
    ),
    h(
      'span',
      { class: 'status' },
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      STATUS_LABEL[person.status],
    ),
  )
}

function knownPeople(present: Collaborator[], session: Session): Person[] {
  const people = present.map((p) => ({ id: p.id, name: p.name }))
  return [...people, { id: session.claims.sub, name: session.claims.name }]
}

/** Notices worth a line in "Here now" (gateway/live/room.py, collab.py, app_channel.py send them). */
function noticeText(message: AppMessage, selfId: string): string | null {
  if (message.type !== 'notification' && actorId(message) === selfId) return null // you know
  const who = actorName(message) ?? 'Someone'
  switch (message.type) {
    case 'session.joined':
      return `${who} joined`
    case 'session.left':
      return `${who} left`
    case 'section.edited': {
      // The projector's recent edits are keyed by paragraph index (projector/fold.py).
      const n = Number(message.section)
      return `${who} edited ${Number.isInteger(n) ? `paragraph ${n + 1}` : 'a section'}`
    }
    case 'comment.created':
      return `${who} commented`
    case 'comment.replied':
      return `${who} replied to a comment`
    case 'comment.resolved':
      return 'A comment was resolved'
    case 'lock.acquired':
    case 'lock.released': {
      const holder = (message.holder as { name?: string } | undefined)?.name ?? who
      const verb = message.type === 'lock.acquired' ? 'locked' : 'unlocked'
      return `${holder} ${verb} “${String(message.section)}”`
    }
    case 'notification':
      return `${who} mentioned you`
    default:
      return null
  }
}

function pushNotice(list: HTMLElement, text: string): void {
  if (list.firstElementChild?.textContent === text) return // "X edited paragraph 2", again
  list.prepend(h('li', {}, text))
  while (list.children.length > 4) list.lastElementChild?.remove()
}

function toolbar(editor: Editor): HTMLElement {
  // [text, label, run, active (pressed), enabled (else while the letter is editable)]
  const buttons: [string, string, () => boolean, () => boolean, (() => boolean)?][] = [
    ['B', 'Bold (Ctrl+B)', () => editor.chain().focus().toggleBold().run(), () => editor.isActive('bold')],
    [
      'I',
      'Italic (Ctrl+I)',
      () => editor.chain().focus().toggleItalic().run(),
      () => editor.isActive('italic'),
    ],
    [
      'H',
      'Heading',
      () => editor.chain().focus().toggleHeading({ level: 2 }).run(),
      () => editor.isActive('heading', { level: 2 }),
    ],
    [
      '•',
      'Bulleted list',
      () => editor.chain().focus().toggleBulletList().run(),
      () => editor.isActive('bulletList'),
    ],
    [
      '1.',
      'Numbered list',
      () => editor.chain().focus().toggleOrderedList().run(),
      () => editor.isActive('orderedList'),
    ],
    [
      '↶',
      'Undo your last change (Ctrl+Z)',
      () => editor.chain().focus().undo().run(),
      () => false,
      () => editor.isEditable && editor.can().undo(),
    ],
    [
      '↷',
      'Redo (Ctrl+Shift+Z)',
      () => editor.chain().focus().redo().run(),
      () => false,
      () => editor.isEditable && editor.can().redo(),
    ],
  ]
  const elements = buttons.map(([text, label, run, active, enabled]) => {
    const button = h(
      'button',
      { type: 'button', 'aria-label': label, title: label, 'aria-pressed': 'false' },
      text,
    )
    // The letter keeps the keyboard: a button focused on mousedown got it back only at TipTap's next
    // animation frame, and a key typed before that went to the button (a space clicked it again).
    button.addEventListener('mousedown', (event) => event.preventDefault())
    button.addEventListener('click', () => run())
    return { button, active, enabled }
  })
  const sync = (): void =>
    elements.forEach(({ button, active, enabled }) => {
      button.setAttribute('aria-pressed', String(active()))
      // Read-only (a viewer, a session ended): TipTap's commands still run on a letter that is not
      // editable, and a click changed this page's copy, which the server no longer takes.
      button.disabled = !(enabled ? enabled() : editor.isEditable)
    })
  editor.on('transaction', sync)
  // Read-only once the session ends (refusal.ts): `setEditable` emits only 'update' (and the undo
  // stacks are not emptied).
  editor.on('update', sync)
  // The redo stack is filled after the undo's transaction (Yjs' afterTransaction): follow the stacks.
  const undoManager = yUndoPluginKey.getState(editor.state)?.undoManager
  for (const event of ['stack-item-added', 'stack-item-popped', 'stack-cleared'] as const)
    undoManager?.on(event, sync)
  sync()
  return h(
    'div',
    { class: 'toolbar', role: 'toolbar', 'aria-label': 'Formatting' },
    ...elements.map((e) => e.button),
  )
}

/** An accessible tab list: arrow keys move between tabs, each tab controls one panel. */
function tabs(
  items: [string, HTMLElement][],
  onSelect: (index: number) => void,
): { element: HTMLElement; select(index: number): void } {
  const buttons = items.map(([label], index) =>
    h(
      'button',
      { type: 'button', role: 'tab', id: `tab-${index}`, 'aria-controls': `tabpanel-${index}` },
      label,
    ),
  )
  const panels = items.map(([, panel], index) =>
    h('div', { role: 'tabpanel', id: `tabpanel-${index}`, 'aria-labelledby': `tab-${index}` }, panel),
  )
  const select = (index: number, focus = false): void => {
    buttons.forEach((button, i) => {
      button.setAttribute('aria-selected', String(i === index))
      button.tabIndex = i === index ? 0 : -1
      panels[i]!.hidden = i !== index
    })
    if (focus) buttons[index]!.focus()
    onSelect(index)
  }
  buttons.forEach((button, index) => {
    button.addEventListener('click', () => select(index))
    button.addEventListener('keydown', (event) => {
      const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0
      if (step) select((index + step + buttons.length) % buttons.length, true)
    })
  })
  select(0)
  const element = h(
    'div',
    { class: 'tabs' },
    h('div', { role: 'tablist', 'aria-label': 'Side panels' }, ...buttons),
    ...panels,
  )
  return { element, select: (index) => select(index) }
}
