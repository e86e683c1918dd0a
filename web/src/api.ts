// REST calls to the gateway. Endpoints that a gateway may not have yet (the letter list,
// comments, versions, history) answer 404/405/501: those surface as `NotAvailable` so the
// views can say "not available" instead of failing.

import type { Session } from './auth'

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The error's JSON body, when it had one (e.g. a 409 lock answer's `locked_by`). */
    readonly data: Record<string, unknown> = {},
    /** Seconds to wait before asking again (Retry-After of a 429 or 503), when the server said. */
    readonly retryAfter: number | null = null,
    /** What a 503 means, when the server said (its `Steno-Unavailable` header). */
    readonly unavailable: string | null = null,
  ) {
    super(message)
  }
}

export class NotAvailable extends ApiError {}

/** No answer at all (fetch's "Failed to fetch"): the browser is offline, or the server is out of
 * reach. The message is one a user can act on; `offline`: the browser itself says it is. */
export class Unreachable extends Error {
  constructor(readonly offline: boolean) {
    super(
      offline
        ? 'You are offline: try again when connected.'
        : 'The server could not be reached: try again in a moment.',
    )
  }
}

/** A comment's anchor: plain-text offsets, or Yjs relative positions (base64) made on the
 * document the user selected in, which the server resolves whatever was edited since. */
export type CommentAnchor = { from: number; to: number } | { start: string; end: string; after: string }

export interface LetterSummary {
  letter_id: string
  title: string
  firm_id?: string
  created_at?: string | number
  updated_at?: string | number
}

export interface Letter extends LetterSummary {
  content: string
}

export interface CommentAuthor {
  id: string
  name: string
}

export interface Comment {
  comment_id: string
  author: CommentAuthor
  body: string
  mentions: string[]
  created_at: string | number
  edited_at?: string | number | null
}

export interface Thread {
  thread_id: string
  resolved: boolean
  detached: boolean
  /** `open_end`: its last character was deleted, so text typed at its end joins it (the server
   * ends it at the character that followed it). */
  anchor: {
    from: number
    to: number
    quote: string
    open_end?: boolean
    start?: string
    end?: string
    after?: string
  }
  comments: Comment[]
}

/** One entry of `GET /v1/notifications`: a mention of the caller in a comment. */
export interface MentionNotice {
  id: string
  letter_id: string
  firm_id?: string
  thread_id: string
  comment_id: string
  author: CommentAuthor | null
  body: string
  created_at: string | number
  read: boolean
}

export interface LockHolder {
  id: string
  name: string
  color?: string
}

/** One entry of `GET /v1/letters/{id}/locks`. */
export interface HeldLock {
  section: string
  locked_by: LockHolder
  expires_at: string
}

export interface GrantedLock {
  section: string
  holder: LockHolder
  expires_at: string
}

export interface VersionSummary {
  version_number: number
  created_at: string | number
  change_data?: { type?: string; label?: string; contributors?: unknown[] } | null
}

/** The answer to `POST /v1/letters/{id}/versions`: the `version.saved` record's offset. */
export interface SavedVersion {
  letter_id: string
  label: string
  offset: number
}

export interface Version extends VersionSummary {
  content: string
}

export interface HistoryEntry {
  ts?: string | number
  at?: string | number
  type?: string
  kind?: string
  user?: { id?: string; name?: string } | string | null
  summary?: string
  data?: Record<string, unknown>
  [key: string]: unknown
}

const MISSING = new Set([404, 405, 501])
const NO_KEYS = /Idempotency-Key needs Redis/
const IN_PROGRESS = /Idempotency-Key is still in progress/
export const SESSION_EXPIRED = 'your session expired or was refused: sign in again'
// Over the user's request budget the gateway answers 429 before the route does anything, with
// Retry-After: the request goes again then, whatever its method, up to RETRIES times when the
// wait is short; a longer wait surfaces as the error (its `retryAfter` says how long). A 503
// with Retry-After (the log is behind, history is being rebuilt, Redis's locks being restored
// after a wipe) goes again the same way if sending it twice does what once does: a read, a
// create with an Idempotency-Key, a lock or unlock (`idempotent`), or a write whose 503 wrote
// nothing (a version's save: `unwritten503`); another write may have got somewhere before it.
const RETRIES = 3
const MAX_WAIT_S = 10
// A request with no answer by then is given up as unreachable: a stalled proxy kept a form's
// button disabled for good (re-read RK). Timers of the page's own, not AbortSignal.timeout:
// tests move them. Each attempt has its own (a Retry-After waited out is not counted).
// A write (POST, PATCH, DELETE: every one appends to the log) is answered within ~20 s, 504
// after the gateway's append timeout, so its deadline only ends what no answer will come to; a
// retry of a keyed create is safe (its Idempotency-Key).
export const WRITE_WITHIN_MS = 45_000
// A read (GET) waits for no append: PostgreSQL, Redis or a letter the gateway holds (a cold one
// loaded first) answer in milliseconds, a few seconds on a loaded server. Waiting a write's 45 s
// left a list or panel blank that long before it said anything; past 15 s no answer is coming.
export const READ_WITHIN_MS = 15_000

function retryAfter(response: Response): number | null {
  if (response.status !== 429 && response.status !== 503) return null
  const seconds = Number(response.headers.get('Retry-After') ?? NaN)
  return Number.isFinite(seconds) && seconds > 0 ? seconds : null
}

function retryNow(response: Response, idempotent: boolean, wait503: boolean): number | null {
  const wait = retryAfter(response)
  if (wait === null || wait > MAX_WAIT_S) return null
  return response.status === 429 || (idempotent && wait503) ? wait : null
}

// The header the gateway marks a 503 with while Redis's locks and create claims are restored
// from the log (gateway/restored.py `refusal_headers`). Not the detail: that is operators' text.
// No fallback to it: the gateway serving this page sends the header.
const UNAVAILABLE = 'Steno-Unavailable'
const RESTORING = 'restoring'

/** Whether `error` is the gateway's 503 while Redis's data is being restored after a wipe. */
export function restoring(error: unknown): error is ApiError {
  return error instanceof ApiError && error.status === 503 && error.unavailable === RESTORING
}

interface SendOptions {
  /** The request may outlive the page (a lock released while it unloads). */
  keepalive?: boolean
  headers?: Record<string, string>
  /** false: a 503's Retry-After is the caller's to wait out (it tells the user meanwhile, as
   * the locks panel does while Redis's locks are restored), not the request's. */
  wait503?: boolean
  /** Sending it twice does what once does (a lock, an unlock): a 503 is waited out as a GET's. */
  idempotent?: boolean
  /** The route's 503 says nothing was written (saving a version: gateway/api/versions.py), so
   * it is sent again after its Retry-After, as a GET is, though a repeat would write again. */
  unwritten503?: boolean
  /** Told before the request waits out a Retry-After (`restoring`: Redis's data being restored),
   * so a click's status can say why nothing happens yet. */
  waiting?: Waiting
}

export type Waiting = (seconds: number, restoring: boolean) => void

export class Api {
  constructor(private session: Session) {}

  /** A renewed token of the same user (from the host app). */
  use(session: Session): void {
    this.session = session
  }

  private async call<T>(method: string, path: string, body?: unknown, options: SendOptions = {}): Promise<T> {
    const response = await this.send(method, path, body, options)
    return (response.status === 204 ? undefined : await response.json()) as T
  }

  /** The answer to a request (sent again after a short Retry-After); an error status throws. */
  private async send(
    method: string,
    path: string,
    body?: unknown,
    {
      keepalive = false,
      headers: extra = {},
      wait503 = true,
      idempotent = false,
      unwritten503 = false,
      waiting,
    }: SendOptions = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...extra, Authorization: `Bearer ${this.session.token}` }
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    let response: Response
    for (let attempt = 1; ; attempt++) {
      const deadline = new AbortController()
      const timer = setTimeout(() => deadline.abort(), method === 'GET' ? READ_WITHIN_MS : WRITE_WITHIN_MS)
      try {
        response = await fetch(path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          keepalive, // lets a request made while the page unloads (a lock release) still go out
          signal: deadline.signal,
        })
      } catch (error) {
        // fetch rejects with a TypeError only when no answer came (its message says nothing),
        // and with an AbortError when none came in time.
        if (error instanceof TypeError || deadline.signal.aborted) throw new Unreachable(!navigator.onLine)
        throw error
      } finally {
        clearTimeout(timer)
      }
      const again = idempotent || unwritten503 || method === 'GET' || 'Idempotency-Key' in extra
      const wait = retryNow(response, again, wait503)
      if (wait === null || attempt > RETRIES) break
      waiting?.(wait, response.status === 503 && response.headers.get(UNAVAILABLE) === RESTORING)
      await new Promise((resolve) => setTimeout(resolve, wait * 1000))
    }
    if (response.ok) return response
    const { message, data } = await errorOf(response)
    // The gateway says only "unauthorized": the token ran out (no host page renewed it), or
    // it no longer verifies (a key rotated).
    if (response.status === 401) throw new ApiError(401, SESSION_EXPIRED, data)
    if (MISSING.has(response.status)) throw new NotAvailable(response.status, message, data)
    if (response.status === 409 && IN_PROGRESS.test(message)) {
      // An earlier try of this form fill (same Idempotency-Key) is still on its way, after a
      // 504 too: it may yet be saved (gateway/collab/idempotent_comments.py).
      const wait = Number(response.headers.get('Retry-After') ?? NaN)
      const when = Number.isFinite(wait) && wait > 0 ? ` in ${Math.ceil(wait)} s` : ' in a moment'
      throw new ApiError(
        409,
        `Your earlier try is still being saved: look for it, or try again${when}.`,
        data,
      )
    }
    const wait = retryAfter(response)
    const unavailable = response.status === 503 ? response.headers.get(UNAVAILABLE) : null
    if (unavailable === RESTORING) {
      // Still restoring after the retries: the user's words, not the operator's.
      const when = wait === null ? 'in a moment' : `in ${Math.ceil(wait)} s`
      throw new ApiError(503, `The server is restoring its data; try again ${when}.`, data, wait, unavailable)
    }
    throw new ApiError(response.status, message, data, wait)
  }

  /**
   * One page of the firm's letters, newest first (the server's default page size): the first
   * page, or the one past the cursor `after`. `next` is the cursor of the following page, null
   * on the last one.
   */
  async listLetters(after?: string): Promise<LetterPage> {
    const search = after === undefined ? '' : `?${new URLSearchParams({ after })}`
    const response = await this.send('GET', `/v1/letters${search}`)
    const data = (await response.json()) as { letters?: LetterSummary[] }
    return { letters: data.letters ?? [], next: nextCursor(response) }
  }

  /** `key`: the `Idempotency-Key`, the same for every try of one form fill: a create sent
   * twice (a double click, a retry after no answer) makes one letter. */
  createLetter(title: string, content: string, key?: string): Promise<LetterSummary> {
    const body: Record<string, string> = { firm_id: this.session.claims.firmId, title }
    if (content) body.content = content
    return this.keyed('/v1/letters', body, key)
  }

  /** A POST that creates something, with `key` as its `Idempotency-Key` (if given). */
  private keyed<T>(path: string, body: unknown, key?: string): Promise<T> {
    if (!key) return this.call('POST', path, body)
    return this.call<T>('POST', path, body, { headers: { 'Idempotency-Key': key } }).catch(
      (error: unknown) => {
        // A gateway without Redis refuses every keyed create, appending nothing
        // (gateway/api/idempotency.py `_key`): sent without the key, as before keys.
        if (!(error instanceof ApiError && error.status === 503 && NO_KEYS.test(error.message))) throw error
        return this.call<T>('POST', path, body)
      },
    )
  }

  getLetter(id: string): Promise<Letter> {
    return this.call('GET', `/v1/letters/${encodeURIComponent(id)}`)
  }

  listComments(id: string): Promise<{ threads: Thread[] }> {
    return this.call('GET', `/v1/letters/${encodeURIComponent(id)}/comments`)
  }

  /** `key`: the `Idempotency-Key` of this form fill (as `createLetter`'s). */
  createComment(
    id: string,
    body: string,
    anchor: CommentAnchor,
    mentions: string[],
    key?: string,
  ): Promise<{ thread_id: string; comment_id: string }> {
    return this.keyed(`/v1/letters/${encodeURIComponent(id)}/comments`, { body, anchor, mentions }, key)
  }

  /** `key`: the `Idempotency-Key` of this form fill (as `createLetter`'s). */
  reply(
    id: string,
    thread: string,
    body: string,
    mentions: string[],
    key?: string,
  ): Promise<{ comment_id: string }> {
    const path = `/v1/letters/${encodeURIComponent(id)}/comments/${encodeURIComponent(thread)}/replies`
    return this.keyed(path, { body, mentions }, key)
  }

  setResolved(id: string, thread: string, resolved: boolean): Promise<unknown> {
    const action = resolved ? 'resolve' : 'reopen'
    const path = `/v1/letters/${encodeURIComponent(id)}/comments/${encodeURIComponent(thread)}/${action}`
    return this.call('POST', path)
  }

  /** Change your own comment (the server refuses anyone else's: 403). */
  editComment(
    id: string,
    thread: string,
    comment: string,
    body: string,
    mentions: string[],
  ): Promise<unknown> {
    return this.call('PATCH', commentPath(id, thread, comment), { body, mentions })
  }

  deleteComment(id: string, thread: string, comment: string): Promise<unknown> {
    return this.call('DELETE', commentPath(id, thread, comment))
  }

  notifications(): Promise<{ unread: number; notifications: MentionNotice[] }> {
    return this.call('GET', '/v1/notifications')
  }

  /** Mark these notifications read, or all of them when `ids` is 'all'. */
  markRead(ids: string[] | 'all'): Promise<unknown> {
    return this.call('POST', '/v1/notifications/read', ids === 'all' ? { all: true } : { ids })
  }

  /** 503 with Retry-After while Redis's locks are being restored (after a wipe): thrown at
   * once, for the panel to say so while it waits. */
  listLocks(id: string): Promise<{ locks: HeldLock[] }> {
    return this.call('GET', `/v1/letters/${encodeURIComponent(id)}/locks`, undefined, { wait503: false })
  }

  /** Acquire, or renew when this user already holds it; 409 (ApiError.data.locked_by) if not. */
  lock(id: string, section: string, waiting?: Waiting): Promise<GrantedLock> {
    return this.call('POST', lockPath(id, section), undefined, { idempotent: true, waiting })
  }

  unlock(id: string, section: string, keepalive = false, waiting?: Waiting): Promise<unknown> {
    return this.call('DELETE', lockPath(id, section), undefined, { keepalive, idempotent: true, waiting })
  }

  /** Save the letter as it is now as a named version (editor, service); 202 once in the log. A
   * 503 (`log behind`: the log had not taken this instance's edits yet) appended nothing. */
  saveVersion(id: string, label: string, waiting?: Waiting): Promise<SavedVersion> {
    const path = `/v1/letters/${encodeURIComponent(id)}/versions`
    return this.call('POST', path, { label }, { unwritten503: true, waiting })
  }

  listVersions(id: string): Promise<{ versions: VersionSummary[] } | VersionSummary[]> {
    return this.call('GET', `/v1/letters/${encodeURIComponent(id)}/versions`)
  }

  getVersion(id: string, n: number): Promise<Version> {
    return this.call('GET', `/v1/letters/${encodeURIComponent(id)}/versions/${n}`)
  }

  /**
   * One page of the letter's history, oldest first (newest first with `order: 'desc'`): `limit`
   * entries (the server's default page when unset) past the cursor `after` in that order (from
   * the start when unset). `next` is the cursor of the following page, null on the last one.
   */
  async historyPage(id: string, query: HistoryQuery = {}, after?: string): Promise<HistoryPage> {
    const params = new URLSearchParams()
    if (query.since !== undefined) params.set('since', query.since)
    if (query.until !== undefined) params.set('until', query.until)
    if (query.limit !== undefined) params.set('limit', String(query.limit))
    if (query.order !== undefined) params.set('order', query.order)
    if (after !== undefined) params.set('after', after)
    const search = params.toString() ? `?${params}` : ''
    const response = await this.send('GET', `/v1/letters/${encodeURIComponent(id)}/history${search}`)
    const data = (await response.json()) as HistoryBody
    const entries = Array.isArray(data) ? data : (data.events ?? data.entries ?? data.history ?? [])
    return { entries, next: nextCursor(response) }
  }
}

export interface LetterPage {
  letters: LetterSummary[]
  /** The cursor of the next page (`after`), null on the last page. */
  next: string | null
}

export interface HistoryQuery {
  /** ISO 8601 instants, kept on every page. */
  since?: string
  until?: string
  /** Entries per page (the server allows 1-10000; its default, 1000, when unset). */
  limit?: number
  /** Oldest ('asc', the server's default) or newest ('desc') first; kept on every page. */
  order?: 'asc' | 'desc'
}

export interface HistoryPage {
  entries: HistoryEntry[]
  /** The cursor of the next page (`after`), null on the last page. */
  next: string | null
}

type HistoryBody =
  { events?: HistoryEntry[]; entries?: HistoryEntry[]; history?: HistoryEntry[] } | HistoryEntry[]

/** The server names the next page in `Link` and, as the cursor alone, in `X-Next-Cursor`. */
function nextCursor(response: Response): string | null {
  return response.headers.get('X-Next-Cursor') || null
}

function commentPath(id: string, thread: string, comment: string): string {
  return `/v1/letters/${encodeURIComponent(id)}/comments/${encodeURIComponent(thread)}/${encodeURIComponent(comment)}`
}

function lockPath(id: string, section: string): string {
  return `/v1/letters/${encodeURIComponent(id)}/locks/${encodeURIComponent(section)}`
}

async function errorOf(response: Response): Promise<{ message: string; data: Record<string, unknown> }> {
  const status = `${response.status} ${response.statusText}`.trim()
  try {
    const data = (await response.json()) as Record<string, unknown>
    const detail = data.detail ?? data.message
    if (typeof detail === 'string') return { message: detail, data }
    return { message: detail === undefined ? status : JSON.stringify(detail), data }
  } catch {
    return { message: status, data: {} } // not JSON: the status line
  }
}
