// The page shell: who you are (header), and which view is showing (#/ or #/letters/<id>).

import './styles.css'

import { Api } from './api'
import { askHostBeforeExpiry, currentSession, listenForHostToken, signOut, type Session } from './auth'
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

/** The session changed: ask the host for the next token before this one expires. */
function watchExpiry(): void {
  stopAsking()
  stopAsking = session ? askHostBeforeExpiry(session) : () => {}
}

// `?letter=ID` (what a host app links to) becomes the in-page route.
const linked = new URL(location.href).searchParams.get('letter')
if (linked && !location.hash) location.hash = `#/letters/${encodeURIComponent(linked)}`

function letterRoute(): string | null {
  const match = /^#\/letters\/([^/?#]+)/.exec(location.hash)
  return match ? decodeURIComponent(match[1]!) : null
}

async function render(): Promise<void> {
  mounted?.destroy()
  mounted = null
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
  const letterId = letterRoute()
  if (letterId) {
    const focus = justCreated === letterId
    justCreated = null
    const view = await editorView(api, session, letterId, focus)
    if (letterRoute() !== letterId) return view.destroy() // navigated away while loading
    mounted = view
    replaceChildren(main, view.element)
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

// A token from the host app signs in, or renews the session of the same user in place (the
// open connection takes it; after a 4401 "expired" close, it reconnects with it).
listenForHostToken((next) => {
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
})

window.addEventListener('hashchange', () => void render())
void render()
