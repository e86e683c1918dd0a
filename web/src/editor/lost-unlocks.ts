// Releases of our own locks that may not have reached the server, sent again later.
//
// A tab releases its locks as it goes away (`pagehide`, a keepalive request) and never sees the
// answer. Refused (503 while Redis's locks are restored after a wipe, or the network gone), the
// lock stayed held, or came back with the restore, for its TTL (5 min): a colleague saw the
// section locked by someone who had left. So each release is remembered in the browser (per
// firm and user) before it is sent, forgotten when its answer is seen, and the next letter page
// of that user sends what is left. A letter page of that user already open (another tab) on the
// same letter sends it too: it hears the release remembered (`storage` event), reads its lock
// list (waiting out a restore's 503s), and sends that letter's releases each time the list is
// read. Only releases added for its own letter count, once per burst of writes: every tab of the
// user hears every write (forgets too), and a tab going away with 5 locks made 14 tabs each read
// its own and every remembered letter's locks, 146 GETs in 1.5 s and 429s (re-read RR3).
//
// Sent again only while the lock the server lists is the one released: held by this user with
// the deadline the releasing tab last had (a restore keeps the logged deadline). Another tab of
// the same user that locked or renewed that section since holds it with a later deadline: it is
// not released from under that tab. A lock past its deadline has lapsed: forgotten.

import { ApiError, type Api, type HeldLock } from '../api'
import type { Claims } from '../auth'
import { browserStore } from '../storage'

interface LostUnlock {
  letter: string
  section: string
  /** The lock's deadline (ms since the epoch) as the releasing tab last had it. */
  expiresAt: number
}

// A renewal moves the deadline by ~100 s; the server's instants and the page's parse of them
// may differ by rounding.
const SAME_DEADLINE_MS = 2_000

function key(claims: Claims): string {
  return `steno.unlocks.${claims.firmId}.${claims.sub}`
}

function read(claims: Claims): LostUnlock[] {
  return parse(browserStore.getItem(key(claims)))
}

function parse(stored: string | null): LostUnlock[] {
  try {
    const items = JSON.parse(stored ?? '[]') as LostUnlock[]
    const now = Date.now()
    return Array.isArray(items)
      ? items.filter(
          (i) => typeof i?.letter === 'string' && typeof i.section === 'string' && i.expiresAt > now,
        )
      : []
  } catch {
    return []
  }
}

function write(claims: Claims, items: LostUnlock[]): void {
  if (items.length) browserStore.setItem(key(claims), JSON.stringify(items))
  else browserStore.removeItem(key(claims))
}

const same = (a: LostUnlock, letter: string, section: string): boolean =>
  a.letter === letter && a.section === section

/** Whether another tab of this user just remembered a release on `letter` (not: forgot one,
 * nor remembered one on another letter). */
export function remembersUnlocks(event: StorageEvent, claims: Claims, letter: string): boolean {
  if (event.key !== key(claims)) return false
  const before = parse(event.oldValue)
  return parse(event.newValue).some(
    (i) =>
      i.letter === letter && !before.some((b) => same(b, i.letter, i.section) && b.expiresAt === i.expiresAt),
  )
}

/** Whether a release on `letter` is still remembered (its answer not seen yet). */
export function lostUnlocksOn(claims: Claims, letter: string): boolean {
  return read(claims).some((i) => i.letter === letter)
}

/** A release about to be sent (lapsed ones dropped meanwhile). */
export function rememberUnlock(claims: Claims, unlock: LostUnlock): void {
  const others = read(claims).filter((i) => !same(i, unlock.letter, unlock.section))
  write(claims, [...others, unlock])
}

/** Its answer came: done (or nothing to release). */
export function forgetUnlock(claims: Claims, letter: string, section: string): void {
  write(
    claims,
    read(claims).filter((i) => !same(i, letter, section)),
  )
}

/** The remembered releases sent again, letter by letter, where the server still lists the
 * lock as released: kept for the next page if the server cannot say (503, no answer). `shown`:
 * the letter of the page and its locks as just read (not asked again); `onlyShown`: that
 * letter's releases alone (the others wait for the next letter page). */
export async function sendLostUnlocks(
  api: Api,
  claims: Claims,
  shown: { letter: string; held: HeldLock[] },
  onlyShown = false,
): Promise<void> {
  const letters = onlyShown ? [shown.letter] : new Set(read(claims).map((i) => i.letter))
  for (const letter of letters) {
    let held
    if (letter === shown.letter) held = shown.held
    else
      try {
        held = (await api.listLocks(letter)).locks
      } catch (error) {
        // A letter gone or no longer ours (403, 404): nothing to release there.
        if (error instanceof ApiError && (error.status === 403 || error.status === 404))
          for (const i of read(claims)) if (i.letter === letter) forgetUnlock(claims, letter, i.section)
        continue
      }
    for (const lost of read(claims).filter((i) => i.letter === letter)) {
      const lock = held.find((l) => l.section === lost.section && l.locked_by.id === claims.sub)
      const released = lock && Math.abs(Date.parse(lock.expires_at) - lost.expiresAt) <= SAME_DEADLINE_MS
      if (!released) {
        forgetUnlock(claims, letter, lost.section) // not held, or held anew since: not ours to end
        continue
      }
      try {
        await api.unlock(letter, lost.section)
        forgetUnlock(claims, letter, lost.section)
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) forgetUnlock(claims, letter, lost.section)
      }
    }
  }
}
