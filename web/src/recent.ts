// Letters this browser opened or created, per firm: the list works even when the gateway has
// no letter-list endpoint, and puts what you touched last on top when it has one.

import type { LetterSummary } from './api'
import { browserStore } from './storage'

const LIMIT = 30

interface RecentLetter {
  letter_id: string
  title: string
  opened_at: number
}

function key(firmId: string): string {
  return `steno.recent.${firmId}`
}

export function recentLetters(firmId: string): RecentLetter[] {
  try {
    const items = JSON.parse(browserStore.getItem(key(firmId)) ?? '[]') as RecentLetter[]
    return Array.isArray(items) ? items.filter((item) => typeof item?.letter_id === 'string') : []
  } catch {
    return []
  }
}

export function rememberLetter(firmId: string, letter: Pick<LetterSummary, 'letter_id' | 'title'>): void {
  const others = recentLetters(firmId).filter((item) => item.letter_id !== letter.letter_id)
  const entry = { letter_id: letter.letter_id, title: letter.title, opened_at: Date.now() }
  browserStore.setItem(key(firmId), JSON.stringify([entry, ...others].slice(0, LIMIT)))
}

export function forgetLetter(firmId: string, letterId: string): void {
  const kept = recentLetters(firmId).filter((item) => item.letter_id !== letterId)
  browserStore.setItem(key(firmId), JSON.stringify(kept))
}
