// Advisory section locks (issue 7): lock or unlock the section the caret is in, see who holds
// which section live (app messages lock.acquired / released / expired), renew our locks while
// the letter is open, release them when it closes, and warn (never block) when someone types
// in a section another person holds. The server never refuses an edit because of a lock.
//
// A tab renews and releases only the locks it took itself (`wanted`): the same person's other
// tab keeps its own. A renewal that fails (a network blip) keeps the lock wanted and is tried
// again on the next tick and on reconnect, until it is granted or someone else holds it.
//
// A section named by a heading is gone once the heading is retitled or removed: its lock then
// protects nothing (the server knows section ids, not text). Once the edits pause, a lock this
// tab holds on a section the letter no longer has is released, and the holder told to lock the
// new one. While the session is over (expired, revoked) nothing is renewed or asked for.
//
// After Redis lost its data (wiped) the list answers 503 with Retry-After until the gateway has
// restored the locks from the log: the panel says so, keeps the locks it showed, and asks again
// then (a bounded number of times; not once the letter is closed).

import type { Editor } from '@tiptap/core'
import type { Transaction } from '@tiptap/pm/state'
import { ySyncPluginKey } from '@tiptap/y-tiptap'
import type { WebsocketProvider } from 'y-websocket'

import {
  ApiError,
  NotAvailable,
  Unreachable,
  restoring as isRestoring,
  type Api,
  type HeldLock,
  type LockHolder,
} from '../api'
import type { Session } from '../auth'
import { afterQuiet, h, replaceChildren } from '../dom'
import type { AppMessage } from './appchannel'
import { userColor, WRITER_ROLES } from './collab'
import { showLocks, type Lock } from './lock-marks'
import {
  forgetUnlock,
  lostUnlocksOn,
  rememberUnlock,
  remembersUnlocks,
  sendLostUnlocks,
} from './lost-unlocks'
import { sectionAt, sectionIds } from './sections'

const TICK_MS = 5_000
// The server's TTL is 300 s: renew once less than this is left, i.e. about every 100 s.
const RENEW_WHEN_LEFT_MS = 200_000
const SHORTCUT = 'Alt+Shift+L'
// A heading being retitled passes through other names: its lock is dropped once typing pauses.
const GONE_AFTER_MS = 1_000
// Retry-After is 5 s and a gateway restores within seconds: a minute of tries, then it is left
// to the next reconnect (or reload) to ask again.
const RETRY_TRIES = 12
// A tab going away writes one remembered release per lock it held: one reaction per burst.
const LOST_QUIET_MS = 300

export interface LocksFeature {
  /** The side panel: caret section, lock/unlock button, status, the list of locks. */
  element: HTMLElement
  /** The advisory warning, shown above the letter. */
  warning: HTMLElement
  onMessage(message: AppMessage): void
  /** The session is over (`why`: expired, revoked): no lock is taken or renewed; null: back. */
  setClosed(why: string | null): void
  destroy(): void
}

export function sectionLocks(
  api: Api,
  letterId: string,
  editor: Editor,
  session: Session,
  provider: WebsocketProvider,
): LocksFeature {
  const self = session.claims.sub
  const locks = new Map<string, Lock>()
  const wanted = new Set<string>() // sections this tab locked and keeps renewing
  const inFlight = new Set<string>()
  const redraw = showLocks(editor, () => locks, self)
  const canLock = WRITER_ROLES.has(session.claims.role)
  let closed = false // the session is over (setClosed)
  const here = h('p', { class: 'small caret-section' })
  const button = h('button', { type: 'button', class: 'lock-toggle', 'aria-keyshortcuts': SHORTCUT })
  const status = h('p', { class: 'muted small lock-status', role: 'status' })
  const list = h('ul', { class: 'lock-list', 'aria-label': 'Locked sections' })
  // The lock the status line speaks of ("X is locked by Y"): reworded once the list drops it.
  let statusAbout: { section: string; holderId: string } | null = null
  // The status line tells of a request that got no answer (offline): cleared once connected.
  let unanswered = false
  let restoring = false // the list answered "being restored" (503): the status line says so
  const say = (text: string, about: { section: string; holderId: string } | null = null): void => {
    status.textContent = text
    statusAbout = about
    unanswered = false
  }
  const noLongerLocked = (section: string): string => `“${section}” is no longer locked.`
  const failed = (text: string, error: unknown): void => {
    say(`${text}: ${(error as Error).message}`)
    unanswered = error instanceof Unreachable
  }
  const warning = h('p', { class: 'lock-warning', role: 'alert', hidden: true })
  const element = h(
    'section',
    { class: 'panel locks', 'aria-labelledby': 'locks-heading' },
    h('h2', { id: 'locks-heading' }, 'Section locks'),
    here,
    canLock ? button : h('p', { class: 'muted small' }, `Your role (${session.claims.role}) cannot lock.`),
    status,
    list,
    h('p', { class: 'muted small' }, 'Locks are advisory: they tell others you are working there.'),
  )

  /** The panel, for the caret's section and the current locks (cheap: on every caret move). */
  const render = (): void => {
    const section = sectionAt(editor.state)
    here.textContent = `Your caret is in “${section}”.`
    const mine = locks.get(section)?.holder.id === self
    button.textContent = mine ? 'Unlock this section' : 'Lock this section'
    button.title = `${button.textContent} (${SHORTCUT})`
    const rows = [...locks.values()].sort((a, b) => a.section.localeCompare(b.section)).map(lockRow)
    // While being restored the server does not know either: "none locked" would mislead.
    const none = restoring ? 'Not known until the locks are restored.' : 'No section is locked.'
    replaceChildren(list, ...(rows.length ? rows : [h('li', { class: 'muted' }, none)]))
    if (warnedAbout !== null && warnedAbout !== section) hideWarning()
    if (statusAbout && locks.get(statusAbout.section)?.holder.id !== statusAbout.holderId)
      say(noLongerLocked(statusAbout.section))
  }
  /** The locks changed: the panel and the marks in the letter. */
  const changed = (): void => {
    render()
    redraw()
  }
  const lockRow = (lock: Lock): HTMLElement =>
    h(
      'li',
      { class: 'lock-row', 'data-section': lock.section },
      h('span', { class: 'swatch', style: `background:${lock.holder.color}`, 'aria-hidden': 'true' }),
      h('span', { class: 'lock-section' }, `“${lock.section}”`),
      ` ${lock.holder.name}${lock.holder.id === self ? ' (you)' : ''}`,
    )

  let warnedAbout: string | null = null
  const hideWarning = (): void => {
    warnedAbout = null
    warning.hidden = true
  }
  const warnIfLocked = (): void => {
    const section = sectionAt(editor.state)
    const lock = locks.get(section)
    if (!lock || lock.holder.id === self) return hideWarning()
    if (warnedAbout === section) return // say it once, not on every keystroke
    warnedAbout = section
    warning.hidden = false
    warning.textContent =
      `${lock.holder.name} has locked “${section}”. Locks are advisory: your edit is kept, ` +
      `but you may be working against each other.`
  }

  const remember = async (section: string, holder: LockHolder, expiresAt: number): Promise<void> => {
    const color = holder.color || (await userColor(holder.id))
    locks.set(section, { section, holder: { id: holder.id, name: holder.name, color }, expiresAt })
  }

  // The list is asked again after a 503's Retry-After (Redis's locks being restored): one timer.
  let retryTimer = 0
  let destroyed = false

  let asked = 0 // refreshes begun: only the newest one's answer is taken (they overlap)
  // The releases remembered for every letter were sent (by the first list answered): later
  // answers send this letter's alone, and the other letters' wait for the next letter page.
  let sentAll = false

  /** The locks, from the server. `tries`: the 503s in a row (Retry-After) before this ask. */
  async function refresh(tries = 0): Promise<void> {
    window.clearTimeout(retryTimer)
    const mine = ++asked
    let held: HeldLock[]
    try {
      held = (await api.listLocks(letterId)).locks
      const colors = await Promise.all(held.map((l) => l.locked_by.color || userColor(l.locked_by.id)))
      // The page asks at start and once connected: an older answer arriving last is older news.
      if (mine !== asked) return
      locks.clear()
      held.forEach((lock, i) => {
        const { id, name } = lock.locked_by
        locks.set(lock.section, {
          section: lock.section,
          holder: { id, name, color: colors[i]! },
          expiresAt: Date.parse(lock.expires_at),
        })
      })
      // Connected again: the user may try what failed offline; restored: the list is current.
      if (unanswered || restoring) say('')
      restoring = false
      changed()
    } catch (error) {
      if (mine !== asked) return // a newer ask answers for the list
      const wait = error instanceof ApiError && error.status === 503 ? error.retryAfter : null
      // The gateway marks it (Steno-Unavailable: restoring, `isRestoring`); else busy for a moment.
      restoring = wait !== null && isRestoring(error)
      const what = restoring ? 'Locks are being restored' : 'The server is busy'
      if (error instanceof NotAvailable) say('Locks are not available on this server.')
      else if (wait !== null && retryLater(wait, tries)) say(`${what}; checking again in ${wait} s.`)
      else if (wait !== null) say(`${what}: the list may be out of date. Reload the page to check again.`)
      else say(`Could not load locks: ${(error as Error).message}`)
      render() // the empty list's line: none locked, or not known
      return
    }
    // Back online: take again what a failed renewal may have let go (if nobody else has it).
    for (const section of wanted) if (locks.get(section)?.holder.id !== self) void acquire(section, true)
    // The server answers again (restored, reconnected): releases our other tabs left (lost-unlocks.ts).
    void sendLostUnlocks(api, session.claims, { letter: letterId, held }, sentAll)
    sentAll = true
  }

  /** Whether the list is asked again in `wait` s (a 503's Retry-After): within RETRY_TRIES
   * answers in a row, while the letter is open. */
  function retryLater(wait: number, tries: number): boolean {
    if (destroyed || tries >= RETRY_TRIES) return false
    window.clearTimeout(retryTimer) // a refresh that overlapped this one may have set it
    retryTimer = window.setTimeout(() => void refresh(tries + 1), wait * 1000)
    return true
  }

  /** A click's lock or unlock waits out a 503's Retry-After (after a Redis wipe): say why. */
  const waiting = (seconds: number, restoring: boolean): void =>
    say(`${restoring ? 'Locks are being restored' : 'The server is busy'}; trying again in ${seconds} s.`)

  /** Acquire or renew (`renewal`: quietly); on 409 show (and remember) who holds it. */
  async function acquire(section: string, renewal = false): Promise<void> {
    if (inFlight.has(section)) return // a request that hangs (offline) is not repeated
    inFlight.add(section)
    try {
      const granted = await api.lock(letterId, section, renewal ? undefined : waiting)
      await remember(section, granted.holder, Date.parse(granted.expires_at))
      wanted.add(section)
      scheduleGone() // its heading may have been retitled while the request was out
      const about = { section, holderId: self }
      if (!renewal) say(`You locked “${section}” (renewed while this letter is open).`, about)
      // The line told of a failed renewal, or (the server let it lapse while we were offline) that
      // it is no longer locked: the quiet re-take makes that untrue.
      else if (
        statusAbout === null &&
        (status.textContent?.startsWith('Could not renew') || status.textContent === noLongerLocked(section))
      )
        say(`Your lock on “${section}” is renewed.`, about)
    } catch (error) {
      const holder = error instanceof ApiError ? (error.data.locked_by as LockHolder | undefined) : undefined
      if (error instanceof ApiError && error.status === 409 && holder) {
        wanted.delete(section) // someone else has it now: nothing left to renew
        await remember(section, holder, Date.parse(String(error.data.expires_at)))
        say(`“${section}” is locked by ${holder.name}.`, { section, holderId: holder.id })
      } else if (wanted.has(section) && transient(error)) {
        // Still wanted: tried again on the next tick and on reconnect. Shown as held only
        // while the server's lock has not run out.
        if ((locks.get(section)?.expiresAt ?? 0) < Date.now()) locks.delete(section)
        say(`Could not renew your lock on “${section}” (${(error as Error).message}); retrying.`)
      } else if (!renewal && error instanceof Unreachable && !error.offline) {
        // Sent, but no answer came: the server may have granted it, and then a colleague sees
        // it locked while this page neither shows, renews nor releases it (re-read RK). The
        // list says: held by us, it is ours (renewed from now on); else it failed.
        inFlight.delete(section)
        await refresh()
        if (locks.get(section)?.holder.id === self) {
          wanted.add(section)
          scheduleGone()
          say(`You locked “${section}” (renewed while this letter is open).`, { section, holderId: self })
        } else failed(`Could not lock “${section}”`, error)
      } else {
        wanted.delete(section) // refused for good (role, session): asking again changes nothing
        if (locks.get(section)?.holder.id === self) locks.delete(section)
        failed(`Could not lock “${section}”`, error)
      }
    } finally {
      inFlight.delete(section)
    }
    changed()
  }

  async function release(section: string): Promise<void> {
    try {
      await api.unlock(letterId, section, false, waiting)
      say(`You unlocked “${section}”.`)
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        failed(`Could not unlock “${section}”`, error)
        return
      }
      say(`“${section}” was no longer locked.`) // it had expired
    }
    wanted.delete(section)
    locks.delete(section)
    changed()
  }

  const toggle = (): void => {
    if (!canLock || closed) return
    const section = sectionAt(editor.state)
    void (locks.get(section)?.holder.id === self ? release(section) : acquire(section))
  }
  button.addEventListener('click', () => {
    toggle()
    editor.commands.focus() // back to the letter, caret where it was
  })
  const onKey = (event: KeyboardEvent): void => {
    if (event.altKey && event.shiftKey && event.code === 'KeyL') {
      event.preventDefault()
      toggle()
    }
  }
  editor.view.dom.addEventListener('keydown', onKey)

  const tick = window.setInterval(() => {
    if (closed) return // a renewal would be refused (401) until a new token comes
    const now = Date.now()
    for (const section of wanted) {
      const lock = locks.get(section)
      if (!lock || lock.expiresAt - now < RENEW_WHEN_LEFT_MS) void acquire(section, true)
    }
    for (const lock of [...locks.values()]) {
      if (!wanted.has(lock.section) && lock.expiresAt < now) {
        locks.delete(lock.section) // its holder's gateway is gone: no lock.expired came
        changed()
      }
    }
  }, TICK_MS)

  /** Release the locks this tab holds on sections the letter no longer has. */
  const releaseGone = (): void => {
    if (editor.isDestroyed) return
    const present = new Set(sectionIds(editor.state.doc))
    const gone = [...wanted].filter((section) => !present.has(section))
    for (const section of gone) {
      wanted.delete(section) // not renewed any more: it lapses even if the release fails
      letGo(section)
      if (locks.get(section)?.holder.id === self) locks.delete(section)
      const why = section.startsWith('paragraph ')
        ? 'the letter has no such paragraph any more'
        : 'its heading was renamed or removed'
      say(`Your lock on “${section}” was released: ${why}. Lock the section again.`)
    }
    if (gone.length) changed()
  }
  // Once the edits pause: every keystroke only moves the deadline of one timer (afterQuiet).
  const goneCheck = afterQuiet(GONE_AFTER_MS, releaseGone)
  const scheduleGone = (): void => goneCheck.poke()
  const onTransaction = ({ transaction }: { transaction: Transaction }): void => {
    if (!transaction.docChanged) return
    const sync = transaction.getMeta(ySyncPluginKey) as { isChangeOrigin?: boolean } | undefined
    if (!sync?.isChangeOrigin) warnIfLocked()
    if (wanted.size || inFlight.size) scheduleGone() // a colleague's edit may retitle it too
  }
  editor.on('transaction', onTransaction)
  editor.on('selectionUpdate', render)
  const onStatus = ({ status: link }: { status: string }): void => {
    if (link === 'connected') void refresh() // missed events while offline: read them again
  }
  provider.on('status', onStatus)
  // The socket may have stayed open through a short outage: read the locks again to clear it.
  const onOnline = (): void => {
    if (unanswered) void refresh()
  }
  window.addEventListener('online', onOnline)

  /** A release nobody waits for (the page goes, the section went): remembered until its
   * answer is seen, else sent again by the user's next letter page (lost-unlocks.ts). */
  function letGo(section: string, keepalive = false): void {
    const expiresAt = locks.get(section)?.expiresAt ?? 0
    if (locks.get(section)?.holder.id === self && expiresAt > Date.now())
      rememberUnlock(session.claims, { letter: letterId, section, expiresAt })
    const done = (): void => forgetUnlock(session.claims, letterId, section)
    void api.unlock(letterId, section, keepalive).then(done, (error: unknown) => {
      if (error instanceof ApiError && error.status === 404) done() // it had lapsed
    })
  }

  const releaseAll = (): void => {
    for (const section of wanted) {
      letGo(section, true)
      locks.delete(section)
    }
    wanted.clear()
  }
  window.addEventListener('pagehide', releaseAll)
  // Another tab of ours let a lock of this letter go and may not see the answer (it is leaving):
  // once the list answers (after a restore's 503s, too), `refresh` sends it again if the server
  // still holds it. Once the burst of writes is over, and only if one is still remembered (the
  // releasing tab, still open, may have seen the answer meanwhile).
  const lostCheck = afterQuiet(LOST_QUIET_MS, () => {
    if (!destroyed && lostUnlocksOn(session.claims, letterId)) void refresh()
  })
  const onStorage = (event: StorageEvent): void => {
    if (remembersUnlocks(event, session.claims, letterId)) lostCheck.poke()
  }
  window.addEventListener('storage', onStorage)
  render()
  void refresh() // and what an earlier page let go but may not have (lost-unlocks.ts)

  return {
    element,
    warning,
    onMessage(message) {
      const section = typeof message.section === 'string' ? message.section : null
      const holder = message.holder as LockHolder | undefined
      if (section === null || !holder?.id) return
      if (message.type === 'lock.acquired') {
        const ttl = Number(message.ttl_s) || 300
        void remember(section, holder, Date.now() + ttl * 1000).then(changed)
      } else if (message.type === 'lock.released' || message.type === 'lock.expired') {
        if (locks.get(section)?.holder.id === holder.id) locks.delete(section)
        // Unlocked on purpose (maybe in another tab of ours): stop renewing. Expired: take it again.
        if (message.type === 'lock.released' && holder.id === self) wanted.delete(section)
        changed()
      }
    },
    setClosed(why) {
      closed = why !== null
      button.disabled = closed
      if (closed) say(`Locks cannot be taken or renewed: your session is over.`)
      else void refresh() // takes again what lapsed meanwhile (if nobody else has it)
    },
    destroy() {
      destroyed = true
      window.clearTimeout(retryTimer)
      goneCheck.cancel()
      lostCheck.cancel()
      releaseAll()
      window.removeEventListener('pagehide', releaseAll)
      window.removeEventListener('storage', onStorage)
      window.clearInterval(tick)
      provider.off('status', onStatus)
      window.removeEventListener('online', onOnline)
      editor.off('transaction', onTransaction)
      editor.off('selectionUpdate', render)
      editor.view.dom.removeEventListener('keydown', onKey)
    },
  }
}

/** Worth retrying: no answer (network), the server busy or failing, or a token about to be
 * renewed by the host (401). */
function transient(error: unknown): boolean {
  return !(error instanceof ApiError) || [401, 429].includes(error.status) || error.status >= 500
}
