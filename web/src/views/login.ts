// Sign-in: in dev mode, pick a demo user (the gateway mints their token); otherwise wait for
// the host application to hand over a token. In dev mode `/?as=parker` signs in as that demo
// user directly (what `steno-collab dev` can print as the URL to open).

import { devDirectory, devLogin, type Session } from '../auth'
import { h, initials } from '../dom'

export async function loginView(onSession: (session: Session) => void): Promise<HTMLElement> {
  const directory = await devDirectory().catch(() => null)
  if (!directory) return hostTokenView()
  const wanted = takeParam('as')
  if (wanted && directory.users.some((user) => user.id === wanted)) {
    onSession(await devLogin(wanted))
    return h('p', { class: 'muted' }, 'Signing in…')
  }
  const error = h('p', { class: 'error', role: 'alert' })
  const choices = directory.users.map((user) => {
    const button = h(
      'button',
      { type: 'button', class: 'user-choice', 'data-user': user.id },
      h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(user.name)),
      h(
        'span',
        {},
        h('strong', {}, user.name),
        h('span', { class: 'muted' }, `${user.title} · ${user.role}`),
      ),
    )
    button.addEventListener('click', async () => {
      try {
        onSession(await devLogin(user.id))
      } catch (err) {
        error.textContent = (err as Error).message
      }
    })
    return h('li', {}, button)
  })
  return h(
    'section',
    { class: 'login card' },
    h('h1', {}, 'Sign in to the demo firm'),
    h(
      'p',
      {},
      'Dev mode: choose who you are. Open a second tab, sign in as someone else, and edit the same letter together.',
    ),
    h('ul', { class: 'user-choices' }, ...choices),
    error,
    h(
      'p',
      { class: 'muted small' },
      `Firm “${directory.firm_id}”. Tokens are minted by this gateway only because it runs in dev mode.`,
    ),
  )
}

// main.ts listens for the host's token (postMessage) for the whole life of the page.
function hostTokenView(): HTMLElement {
  return h(
    'section',
    { class: 'login card' },
    h('h1', {}, 'Waiting for sign-in'),
    h('p', {}, 'This page gets its access token from the application that opened it.'),
    h(
      'p',
      { class: 'muted small' },
      'Integrators: open it with ?token=JWT, or post {type: "steno:token", token} to this window after it posts {type: "steno:ready"}.',
    ),
  )
}

function takeParam(name: string): string | null {
  const url = new URL(location.href)
  const value = url.searchParams.get(name)
  if (value !== null) {
    url.searchParams.delete(name)
    history.replaceState(null, '', url.toString())
  }
  return value
}
