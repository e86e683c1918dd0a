// The header's "Mentions" inbox: the unread count, and a panel listing the caller's mentions
// (`GET /v1/notifications`, newest first). The count follows live `notification` app messages
// (the open letter's connection re-posts them as MENTIONED), the page regaining focus, and a
// slow poll; opening a mention marks it read and shows its thread (main.ts: `?thread=`).

import { NotAvailable, type Api, type MentionNotice } from '../api'
import { h, relativeTime, replaceChildren } from '../dom'
import { recentLetters } from '../recent'

/** Dispatched on `window` when a live mention arrives (views/editor.ts). */
export const MENTIONED = 'steno:mentioned'
const POLL_MS = 60_000

export interface Inbox {
  element: HTMLElement
  stop(): void
}

export function mentionsInbox(api: Api, firmId: string): Inbox {
  const count = h('span', { class: 'count', 'aria-hidden': 'true' })
  const button = h(
    'button',
    {
      type: 'button',
      class: 'mentions-toggle',
      'aria-expanded': 'false',
      'aria-controls': 'mentions-panel',
      'data-unread': '0',
      'aria-label': 'Mentions',
    },
    'Mentions',
    count,
  )
  const list = h('ul', { class: 'mentions-list', 'aria-label': 'Your mentions' })
  const status = h('p', { class: 'muted small', role: 'status' })
  const markAll = h('button', { type: 'button', class: 'link mark-all' }, 'Mark all read')
  const panel = h(
    'div',
    { class: 'mentions-panel', id: 'mentions-panel', hidden: true },
    h('div', { class: 'mentions-head' }, h('strong', {}, 'Mentions'), markAll),
    status,
    list,
  )
  const element = h('div', { class: 'mentions' }, button, panel)

  let seq = 0 // a slower, older answer must not overwrite a newer one
  let shown = '' // what the rows show (`refresh`)
  async function refresh(): Promise<void> {
    const mine = ++seq
    try {
      const { unread, notifications } = await api.notifications()
      if (mine !== seq) return
      element.hidden = false
      button.dataset.unread = String(unread)
      button.setAttribute('aria-label', unread ? `Mentions, ${unread} unread` : 'Mentions')
      count.textContent = unread ? String(unread) : ''
      status.textContent = notifications.length ? '' : 'Nobody has mentioned you yet.'
      // Rows are made anew only when what they show changed (their times once a minute): a
      // row replaced under a click took it detached, so the link went nowhere (a CI run's
      // click on a mention as the panel opened). Keep the keyboard focus on the one it was on.
      // Each letter's title, known from this browser's recent letters: read once per refresh.
      const recent = new Map(recentLetters(firmId).map((l) => [l.letter_id, l.title]))
      const titles = notifications.map((n) => recent.get(n.letter_id))
      const shows = JSON.stringify([Math.floor(Date.now() / 60_000), notifications, titles])
      if (shows === shown) return
      shown = shows
      const focused = list.contains(document.activeElement) ? (document.activeElement as HTMLElement) : null
      replaceChildren(list, ...notifications.map((notice, i) => row(notice, titles[i])))
      if (focused)
        list.querySelector<HTMLElement>(`a[data-id="${CSS.escape(focused.dataset.id ?? '')}"]`)?.focus()
    } catch (error) {
      if (mine !== seq) return
      if (error instanceof NotAvailable)
        element.hidden = true // an older gateway: no inbox
      else status.textContent = `Could not load mentions: ${(error as Error).message}`
    }
  }

  function row(notice: MentionNotice, title: string | undefined): HTMLElement {
    const link = h(
      'a',
      {
        href: `#/letters/${encodeURIComponent(notice.letter_id)}?thread=${encodeURIComponent(notice.thread_id)}`,
        class: 'mention-link',
        'data-id': notice.id,
      },
      h('strong', {}, notice.author?.name ?? 'Someone'),
      ' in ',
      h('span', { class: 'mention-letter' }, title || notice.letter_id),
      h('span', { class: 'mention-body', title: notice.body }, oneLine(notice.body)),
      h('time', { datetime: String(notice.created_at) }, relativeTime(new Date(notice.created_at).getTime())),
    )
    // The link navigates on its own; marking read goes alongside (unless leaving was declined).
    link.addEventListener('click', (event) => {
      if (event.defaultPrevented) return
      close(false)
      if (!notice.read) void act(() => api.markRead([notice.id]))
    })
    return h('li', { class: notice.read ? 'read' : 'unread', 'data-read': String(notice.read) }, link)
  }

  async function act(call: () => Promise<unknown>): Promise<void> {
    try {
      await call()
    } catch (error) {
      status.textContent = `The server refused: ${(error as Error).message}`
    }
    await refresh()
  }

  function open(): void {
    panel.hidden = false
    button.setAttribute('aria-expanded', 'true')
    void refresh()
    list.querySelector<HTMLElement>('a')?.focus()
  }
  function close(focusButton: boolean): void {
    panel.hidden = true
    button.setAttribute('aria-expanded', 'false')
    if (focusButton) button.focus()
  }
  button.addEventListener('click', () => (panel.hidden ? open() : close(false)))
  markAll.addEventListener('click', () => void act(() => api.markRead('all')))
  // On the document: the focus may have gone with a row the refresh replaced.
  const onKey = (event: KeyboardEvent): void => {
    if (panel.hidden) return
    if (event.key === 'Escape') return close(true)
    if (!element.contains(document.activeElement)) return
    const step = event.key === 'ArrowDown' ? 1 : event.key === 'ArrowUp' ? -1 : 0
    if (!step) return
    const links = [...list.querySelectorAll<HTMLElement>('a')]
    const at = links.indexOf(document.activeElement as HTMLElement)
    links[Math.max(0, Math.min(links.length - 1, at + step))]?.focus()
    event.preventDefault()
  }
  const outside = (event: MouseEvent): void => {
    if (!panel.hidden && !element.contains(event.target as Node)) close(false)
  }
  const onChange = (): void => void refresh()
  document.addEventListener('click', outside)
  document.addEventListener('keydown', onKey)
  window.addEventListener(MENTIONED, onChange)
  window.addEventListener('focus', onChange)
  const poll = window.setInterval(onChange, POLL_MS)
  void refresh()
  return {
    element,
    stop() {
      document.removeEventListener('click', outside)
      document.removeEventListener('keydown', onKey)
      window.removeEventListener(MENTIONED, onChange)
      window.removeEventListener('focus', onChange)
      clearInterval(poll)
    },
  }
}

/** The comment's first line, at most 120 characters (code points: no half emoji). */
function oneLine(body: string): string {
  const line = [...(body.split('\n')[0] ?? '')]
  return line.length > 120 || body.includes('\n') ? `${line.slice(0, 120).join('')}…` : body
}
