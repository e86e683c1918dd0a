// The page shell: who you are (header), and which view is showing (#/ or #/letters/<id>;
// `#/letters/<id>?thread=<thread>` also shows that comment thread, once: the mentions inbox).

import './styles.css'

import { Api } from './api'
import {
  askHostBeforeExpiry,
  currentSession,
  listenForHostToken,
  remintDev,
  signOut,
  type Session,
} from './auth'
import { h, replaceChildren } from './dom'
import { editorView, type Mounted } from './views/editor'
import { lettersView } from './views/letters'
import { loginView } from './views/login'
import { mentionsInbox, type Inbox } from './views/mentions'

const root = document.getElementById('app')!
const main = h('main', { id: 'main', tabindex: -1 })
const who = h('div', { class: 'who' })
root.append(
  h(
    'header',
    { class: 'app-header' },
    h(
      'a',
      { class: 'brand', href: '#/' },
      h('span', { class: 'logo', 'aria-hidden': 'true' }),
      'Steno Collab',
    ),
    who,
  ),
  main,
)

let session: Session | null = currentSession()
let mounted: Mounted | null = null
let justCreated: string | null = null // a letter created on the list: its editor takes the focus
let stopAsking = (): void => {}
let inbox: { session: Session; api: Api; view: Inbox } | null = null
let shown = { hash: location.hash, letterId: null as string | null } // what `mounted` shows
let leaveAsked = false // a link click has asked already: its hashchange must not ask again

// Pending edits and unsent comment text exist only in this tab (see views/editor.ts): leaving the
// letter loses them.
const LEAVE_QUESTION =
  'Some of your edits have not reached the server yet and exist only in this tab. Leave this letter and lose them?'
const UNSENT_QUESTION = 'A comment or reply you wrote has not been sent. Leave this letter and lose it?'

/** The session changed: ask the host for the next token before this one expires. */
function watchExpiry(): void {
  stopAsking()
  stopAsking = session ? askHostBeforeExpiry(session) : () => {}
}

// `?letter=ID` (what a host app links to) becomes the in-page route.
const linked = new URL(location.href).searchParams.get('letter')
if (linked && !location.hash) location.hash = `#/letters/${encodeURIComponent(linked)}`

function letterRoute(hash = location.hash): string | null {
  const match = /^#\/letters\/([^/?#]+)/.exec(hash)
  return match ? decodeURIComponent(match[1]!) : null
}

/** The thread a route asks to show, taken out of the address (so the same link works again). */
function takeThread(): string | null {
  const match = /^(#\/letters\/[^/?#]+)\?(?:.*&)?thread=([^&]+)/.exec(location.hash)
  if (!match) return null
  history.replaceState(history.state, '', match[1])
  return decodeURIComponent(match[2]!)
}

/** What to ask before going to `hash` closes the open letter while it has edits the server has
 * not confirmed, or comment text not sent; null: nothing would be lost. */
function leaveQuestion(hash: string): string | null {
  if (!mounted || shown.letterId === null || letterRoute(hash) === shown.letterId) return null
  return mounted.pending() ? LEAVE_QUESTION : mounted.unsent() ? UNSENT_QUESTION : null
}

/** Whether leaving for `hash` may go ahead: nothing would be lost, or the user said so. */
function mayLeave(hash: string): boolean {
  const question = leaveQuestion(hash)
  return question === null || window.confirm(question)
}

async function render(): Promise<void> {
  const thread = takeThread()
  const letterId = letterRoute()
  mounted?.destroy()
  mounted = null
  shown = { hash: location.hash, letterId: null }
  watchExpiry()
  renderWho()
  if (!session) {
    const login = await loginView((s) => {
      session = s
      void render()
    })
    if (!session) replaceChildren(main, login) // else signed in while it loaded (`?as=`)
    return
  }
  const api = new Api(session)
  if (letterId) {
    const focus = justCreated === letterId
    justCreated = null
    const view = await editorView(api, session, letterId, focus, remint)
    if (letterRoute() !== letterId) return view.destroy() // navigated away while loading
    mounted = view
    shown = { hash: location.hash, letterId }
    replaceChildren(main, view.element)
    if (thread) view.showThread(thread)
    return
  }
  document.title = 'Letters · Steno Collab'
  replaceChildren(
    main,
    lettersView(api, session, (id, created = false) => {
      justCreated = created ? id : null
      location.hash = `#/letters/${encodeURIComponent(id)}`
    }),
  )
}

/** The mentions inbox of this session: kept across routes, made anew for another session. */
function currentInbox(): HTMLElement | null {
  if (inbox?.session !== session) {
    inbox?.view.stop()
    inbox = null
    if (session) {
      const api = new Api(session)
      inbox = { session, api, view: mentionsInbox(api, session.claims.firmId) }
    }
  }
  return inbox?.view.element ?? null
}

function renderWho(): void {
  const mentions = currentInbox()
  if (!session) return replaceChildren(who)
  const out = h('button', { type: 'button', class: 'link' }, 'Switch user')
  out.addEventListener('click', () => {
    if (!mayLeave('#/')) return
    signOut()
    session = null
    location.hash = '#/'
    void render()
  })
  replaceChildren(
    who,
    mentions,
    h(
      'span',
      {},
      h('strong', {}, session.claims.name),
      h('span', { class: 'muted' }, ` · ${session.claims.role} · ${session.claims.firmId}`),
    ),
    out,
  )
}

// A token from the host app (or, in dev mode, /dev/token again) signs in, or renews the session
// of the same user in place (the open connection takes it; after a 4401 "expired" close, it
// reconnects with it).
function takeToken(next: Session): void {
  // The same user, firm and role: renewed in place. A changed role (or anything else) opens the
  // page again as the new session: the gateway renews only the same identity in place.
  const sameIdentity =
    session?.claims.sub === next.claims.sub &&
    session.claims.firmId === next.claims.firmId &&
    session.claims.role === next.claims.role
  session = next
  if (sameIdentity && inbox) {
    inbox.api.use(next)
    inbox.session = next
  }
  if (sameIdentity && mounted) {
    mounted.renew(next)
    watchExpiry()
    renderWho()
  } else {
    void render()
  }
}
listenForHostToken(takeToken)

/** Dev mode, the letter's token expired: mint the next at /dev/token, as a host would hand it. */
function remint(): void {
  remintDev().then(
    (next) => next && takeToken(next),
    () => undefined, // no longer in dev mode: the letter turns read-only as without a host
  )
}

// In-page links ("← Letters", the brand, a mention of another letter) ask before they leave a
// letter with pending edits or unsent comment text; declined, nothing happens (no history entry
// either).
document.addEventListener(
  'click',
  (event) => {
    const link = (event.target as Element | null)?.closest?.('a[href^="#"]')
    const plain = event.button === 0 && !event.ctrlKey && !event.metaKey && !event.shiftKey && !event.altKey
    if (!link || !plain || event.defaultPrevented) return
    const question = leaveQuestion(link.getAttribute('href')!)
    if (question === null) return
    if (window.confirm(question)) leaveAsked = true
    else event.preventDefault()
  },
  true, // before the link's own handlers (the inbox marks a mention read on click)
)

// Back / forward (or an edited address) cannot be stopped beforehand: declined, the letter's
// address is pushed back, without rendering anything again.
window.addEventListener('hashchange', () => {
  const asked = leaveAsked
  leaveAsked = false
  if (!asked && !mayLeave(location.hash)) return history.pushState(history.state, '', shown.hash)
  if (mounted && shown.letterId !== null && letterRoute() === shown.letterId) {
    // The open letter again (a mention in it): keep it open, show the thread.
    const thread = takeThread()
    shown.hash = location.hash
    if (thread) mounted.showThread(thread)
    return
  }
  void render()
})
void render()
