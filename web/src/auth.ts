// Where the page's identity comes from. In dev mode the gateway mints demo tokens
// (/dev/users, /dev/token); otherwise the host app hands a token over, either as `?token=`
// or by postMessage. The token lives in sessionStorage: per tab, so two tabs can be two users
// (in memory where the browser refuses this page storage, as a frame on another site: storage.ts).

import { tabStore } from './storage'

const STORAGE_KEY = 'steno.token'
// The demo user whose token this tab got from /dev/token (dev mode): it may mint the next one.
const DEV_USER_KEY = 'steno.dev-user'

export interface Claims {
  sub: string
  firmId: string
  name: string
  role: string
  exp: number
}

export interface Session {
  token: string
  claims: Claims
}

export interface DemoUser {
  id: string
  name: string
  role: string
  title: string
}

export interface DemoDirectory {
  firm_id: string
  users: DemoUser[]
}

/** The token's claims, unverified: the server verifies; the page only labels things. */
export function decodeClaims(token: string): Claims | null {
  const payload = token.split('.')[1]
  if (!payload) return null
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'))
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0))
    const data = JSON.parse(new TextDecoder().decode(bytes)) as Partial<Claims>
    if (typeof data.sub !== 'string' || typeof data.firmId !== 'string') return null
    return {
      sub: data.sub,
      firmId: data.firmId,
      name: typeof data.name === 'string' && data.name ? data.name : data.sub,
      role: typeof data.role === 'string' ? data.role : 'viewer',
      exp: typeof data.exp === 'number' ? data.exp : 0,
    }
  } catch {
    return null
  }
}

function sessionFrom(token: string | null): Session | null {
  if (!token) return null
  const claims = decodeClaims(token)
  if (!claims || claims.exp * 1000 <= Date.now()) return null
  return { token, claims }
}

/** A token from `?token=` wins (and is removed from the address bar), then this tab's. */
export function currentSession(): Session | null {
  const url = new URL(location.href)
  const fromQuery = url.searchParams.get('token')
  if (fromQuery) {
    url.searchParams.delete('token')
    history.replaceState(null, '', url.toString())
    const session = sessionFrom(fromQuery)
    if (session) {
      tabStore.setItem(STORAGE_KEY, fromQuery)
      tabStore.removeItem(DEV_USER_KEY)
      return session
    }
  }
  return sessionFrom(tabStore.getItem(STORAGE_KEY))
}

/** `devUser`: the demo user /dev/token minted it for; a token from anywhere else has none. */
export function storeToken(token: string, devUser?: string): Session | null {
  const session = sessionFrom(token)
  if (session) {
    tabStore.setItem(STORAGE_KEY, token)
    if (devUser) tabStore.setItem(DEV_USER_KEY, devUser)
    else tabStore.removeItem(DEV_USER_KEY)
  }
  return session
}

export function signOut(): void {
  tabStore.removeItem(STORAGE_KEY)
  tabStore.removeItem(DEV_USER_KEY)
}

/** Whether this tab's token came from /dev/token: the next can be minted there too. */
export function devMinted(): boolean {
  return tabStore.getItem(DEV_USER_KEY) !== null
}

/** A new token of this tab's demo user from /dev/token (dev mode), or null if it has none. */
export async function remintDev(): Promise<Session | null> {
  const user = tabStore.getItem(DEV_USER_KEY)
  return user ? devLogin(user) : null
}

/**
 * Tokens from the embedding app: `{type: 'steno:token', token}` posted by the parent frame or
 * the opener. Messages from any other window are ignored. The page announces itself with
 * `{type: 'steno:ready'}` so the host knows when to send (and re-send on expiry).
 */
export function listenForHostToken(onToken: (session: Session) => void): () => void {
  const handler = (event: MessageEvent): void => {
    const fromHost =
      event.source !== null && (event.source === window.parent || event.source === window.opener)
    if (!fromHost || event.source === window) return
    const data = event.data as { type?: unknown; token?: unknown } | null
    if (data?.type !== 'steno:token' || typeof data.token !== 'string') return
    const session = storeToken(data.token)
    if (session) onToken(session)
  }
  window.addEventListener('message', handler)
  hostWindow()?.postMessage({ type: 'steno:ready' }, '*')
  return () => window.removeEventListener('message', handler)
}

/** The embedding window, if any: the parent frame, else the opener. */
export function hostWindow(): Window | null {
  return window.parent !== window ? window.parent : (window.opener as Window | null)
}

/**
 * Ask the host for a fresh token before this one expires: `{type: 'steno:token-expiring',
 * expiresAt}` (seconds since the epoch) `leadS` before (or at half the remaining life, if
 * shorter). A `steno:token` answer renews the session in place. Returns a cancel function.
 */
export function askHostBeforeExpiry(session: Session, leadS = 60): () => void {
  const host = hostWindow()
  if (!host) return () => {}
  let timer = 0
  const ask = (): void =>
    host.postMessage({ type: 'steno:token-expiring', expiresAt: session.claims.exp }, '*')
  const arm = (): void => {
    const left = session.claims.exp * 1000 - Date.now()
    const due = Math.max(0, left - Math.min(leadS * 1000, left / 2))
    // setTimeout fires at once past 2^31 - 1 ms (24.8 days): a longer token waits in steps.
    timer = window.setTimeout(due > MAX_DELAY_MS ? arm : ask, Math.min(due, MAX_DELAY_MS))
  }
  arm()
  return () => clearTimeout(timer)
}

const MAX_DELAY_MS = 2 ** 31 - 1

/** The demo directory in dev mode; null when the gateway is not in dev mode (404). */
export async function devDirectory(): Promise<DemoDirectory | null> {
  const response = await fetch('/dev/users')
  if (!response.ok) return null
  return (await response.json()) as DemoDirectory
}

export async function devLogin(userId: string): Promise<Session> {
  const response = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user_id: userId }),
  })
  if (!response.ok) throw new Error(`dev login refused (${response.status})`)
  const { token } = (await response.json()) as { token: string }
  const session = storeToken(token, userId)
  if (!session) throw new Error('the gateway minted a token this page cannot read')
  return session
}
