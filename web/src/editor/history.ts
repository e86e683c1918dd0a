// The history view (contract of issue 8): versions and the activity timeline, any version opened
// read-only with its differences against the current text. "Not available" when the gateway has
// no such endpoints yet, or when the reader's role may not see them.

import type { Editor } from '@tiptap/core'

import { ApiError, NotAvailable, type Api, type HistoryEntry, type VersionSummary } from '../api'
import { append, h, instantTime, replaceChildren } from '../dom'
import { diffWords, plainText } from './text'

// Who may read versions and history: tools/rest.py AUDITORS.
export const AUDITOR_ROLES = new Set(['auditor', 'service'])

export interface HistoryPanel {
  element: HTMLElement
  refresh(): Promise<void>
  /** A version labelled `label` was just saved from this page: loaded again, and the versions
   * a few more times until they list it (the snapshotter writes it a moment after the save). */
  saved(label: string): Promise<void>
}

// The versions list follows PostgreSQL, which has a save's version usually within a second.
const CATCH_UP_TRIES = 8
const CATCH_UP_DELAY_MS = 750

export function historyPanel(
  api: Api,
  letterId: string,
  editor: Editor,
  nameOf: (userId: string) => string,
  role: string,
): HistoryPanel {
  const versions = h('ol', { class: 'versions', 'aria-label': 'Versions' })
  const timeline = h('ol', { class: 'timeline', 'aria-label': 'Activity' })
  const versionStatus = h('p', { class: 'muted', role: 'status' })
  const timelineStatus = h('p', { class: 'muted', role: 'status' })
  const viewer = h('div', { class: 'version-viewer', hidden: true })
  const refreshButton = h('button', { type: 'button', class: 'link' }, 'Refresh')
  refreshButton.addEventListener('click', () => void refresh())
  const element = h(
    'section',
    { class: 'panel history', 'aria-labelledby': 'history-heading' },
    h('h2', { id: 'history-heading' }, 'History ', refreshButton),
    h('h3', {}, 'Versions'),
    versionStatus,
    versions,
    h('h3', {}, 'Activity'),
    timelineStatus,
    timeline,
    viewer,
  )

  // An answer whose Retry-After is too long to wait within the request (503 while history is
  // rebuilt from the log) is asked again after it: one timer, reset by any refresh.
  let retryTimer = 0
  const retryLater = (error: unknown): string => {
    if (!(error instanceof ApiError) || error.retryAfter === null) return ''
    if (!retryTimer)
      retryTimer = window.setTimeout(() => {
        retryTimer = 0
        if (element.isConnected) void refresh()
      }, error.retryAfter * 1000)
    return ` Trying again in ${error.retryAfter} s.`
  }

  async function refresh(): Promise<void> {
    window.clearTimeout(retryTimer)
    retryTimer = 0
    if (!AUDITOR_ROLES.has(role)) {
      // The server would answer 403 (and the console log two errors): do not ask.
      versionStatus.textContent = 'Versions: for auditors only.'
      timelineStatus.textContent = 'The activity timeline: for auditors only.'
      refreshButton.hidden = true
      return
    }
    await loadTimeline() // first: it teaches the names the versions' contributors are shown with
    await loadVersions()
  }

  let listed: VersionSummary[] = [] // the versions shown

  /** The versions listed; null when they could not be loaded (the status line says why). */
  async function loadVersions(): Promise<VersionSummary[] | null> {
    try {
      const data = await api.listVersions(letterId)
      const items = (Array.isArray(data) ? data : data.versions)
        .slice()
        .sort((a, b) => b.version_number - a.version_number)
      versionStatus.textContent = items.length ? '' : 'No saved versions yet.'
      replaceChildren(versions, ...items.map(versionRow))
      listed = items
      return items
    } catch (error) {
      replaceChildren(versions) // an earlier refresh's rows would pass for the letter's versions
      listed = []
      versionStatus.textContent = unavailable(error, 'Versions') + retryLater(error)
      return null
    }
  }

  async function saved(label: string): Promise<void> {
    if (!AUDITOR_ROLES.has(role)) return // no list shown
    const before = new Set(listed.map((v) => v.version_number))
    const isNew = (v: VersionSummary): boolean =>
      !before.has(v.version_number) && v.change_data?.label === label
    await refresh() // the timeline names the save at once
    for (let tries = 1; tries < CATCH_UP_TRIES && !listed.some(isNew); tries++) {
      await new Promise((resolve) => setTimeout(resolve, CATCH_UP_DELAY_MS))
      if (!element.isConnected || (await loadVersions()) === null) return
    }
  }

  // Session rows carry the user's display name, comment rows their author's: learn it for rows
  // that only have the user id (someone who acted over REST only never joined a session).
  const learned = new Map<string, string>()
  const nameFrom = (id: string): string => learned.get(id) ?? nameOf(id)
  const learn = (entries: HistoryEntry[]): Set<string> => {
    const found = new Set<string>()
    const note = (id: unknown, name: unknown): void => {
      if (typeof id !== 'string' || typeof name !== 'string' || !name || learned.get(id) === name) return
      learned.set(id, name)
      found.add(id)
    }
    for (const { user, data: d } of entries) {
      note(user, d?.name)
      const author = (d?.author ?? null) as { id?: unknown; name?: unknown } | null
      if (author) note(author.id, author.name)
    }
    return found
  }

  // The timeline comes in pages, newest first (GET .../history?order=desc follows
  // X-Next-Cursor): recent activity, what readers want first, on refresh; each earlier page
  // when the end of the list scrolls into view or "Load more" is pressed. One request at a
  // time, and only as far as the reader goes: a busy letter's whole history is never fetched
  // at once, and never cut off without saying so.
  const moreButton = h('button', { type: 'button', class: 'link' }, 'Load more')
  const more = h('li', { class: 'more' }, moreButton)
  moreButton.addEventListener('click', () => void loadPage())
  let cursor: string | null | undefined // undefined: the first page; null: no more pages
  let shown = 0
  let loading: Promise<void> | null = null
  let generation = 0 // a refresh drops what an older walk still brings
  const nearEnd = new IntersectionObserver(
    (seen) => {
      if (seen.some((entry) => entry.isIntersecting)) void loadPage()
    },
    { root: timeline, rootMargin: '0px 0px 100px 0px' },
  )

  async function loadTimeline(): Promise<void> {
    generation++
    cursor = undefined
    shown = 0
    loading = null
    nearEnd.disconnect()
    replaceChildren(timeline)
    timelineStatus.textContent = 'Loading…'
    await loadPage()
  }

  function loadPage(): Promise<void> {
    if (cursor === null) return Promise.resolve()
    if (loading === null) {
      const current: Promise<void> = fetchPage(generation).finally(() => {
        if (loading === current) loading = null
      })
      loading = current
    }
    return loading
  }

  async function fetchPage(walk: number): Promise<void> {
    nearEnd.disconnect()
    moreButton.disabled = true
    moreButton.textContent = 'Loading…'
    try {
      const page = await api.historyPage(letterId, { order: 'desc' }, cursor ?? undefined)
      if (walk !== generation) return
      // Newest first: a name learned now may belong to rows already shown (a resolve before the
      // comment it resolves, on an earlier page).
      const named = learn(page.entries)
      for (const who of timeline.querySelectorAll<HTMLElement>('strong[data-user]')) {
        const id = who.dataset.user ?? ''
        if (named.has(id)) who.textContent = nameFrom(id)
      }
      more.remove()
      append(timeline, ...page.entries.map((entry) => timelineRow(entry, nameFrom)))
      shown += page.entries.length
      cursor = page.next
      if (cursor === null) {
        timelineStatus.textContent = shown ? `${count(shown)}, newest first.` : 'No activity recorded yet.'
        return
      }
      timelineStatus.textContent = `The latest ${count(shown)}, newest first; earlier ones follow.`
      moreButton.textContent = 'Load more'
      timeline.append(more)
      nearEnd.observe(more) // reports at once if still in view: the next page follows
    } catch (error) {
      if (walk !== generation) return
      const what = shown ? `Earlier activity (after ${count(shown)})` : 'The activity timeline'
      timelineStatus.textContent = unavailable(error, what) + (shown ? '' : retryLater(error))
      if (shown) {
        moreButton.textContent = 'Try again'
        timeline.append(more) // not observed: a retry is the reader's call
      }
    } finally {
      moreButton.disabled = false
    }
  }

  function versionRow(version: VersionSummary): HTMLElement {
    const kind = version.change_data?.label ?? version.change_data?.type ?? 'version'
    const who = contributorNames(version.change_data?.contributors, nameFrom)
    const open = h('button', { type: 'button', class: 'link' }, `Version ${version.version_number}`)
    open.addEventListener('click', () => void openVersion(version.version_number))
    return h(
      'li',
      {},
      open,
      ' ',
      h('span', { class: 'badge' }, kind),
      h('div', { class: 'muted' }, instantTime(version.created_at), who ? ` · ${who}` : ''),
    )
  }

  async function openVersion(n: number): Promise<void> {
    viewer.hidden = false
    replaceChildren(viewer, h('p', { class: 'muted' }, `Loading version ${n}…`))
    try {
      const version = await api.getVersion(letterId, n)
      const close = h('button', { type: 'button' }, 'Close')
      close.addEventListener('click', () => {
        viewer.hidden = true
        open.focus()
      })
      const open = h('h3', { tabindex: -1 }, `Version ${n} (read-only)`)
      const changes = diffWords(version.content, plainText(editor.state.doc))
      replaceChildren(
        viewer,
        open,
        h(
          'p',
          { class: 'muted' },
          instantTime(version.created_at),
          ' · ',
          h('ins', {}, 'added since'),
          ' ',
          h('del', {}, 'removed since'),
        ),
        h(
          'div',
          { class: 'version-text', 'aria-label': `Changes from version ${n} to the current text` },
          ...changes.map((part) =>
            part.kind === 'same' ? part.text : h(part.kind === 'added' ? 'ins' : 'del', {}, part.text),
          ),
        ),
        close,
      )
      open.focus()
    } catch (error) {
      replaceChildren(viewer, h('p', { class: 'muted' }, unavailable(error, `Version ${n}`)))
    }
  }

  return { element, refresh, saved }
}

function timelineRow(entry: HistoryEntry, nameOf: (id: string) => string): HTMLElement {
  const when = entry.ts ?? entry.at
  const id = typeof entry.user === 'string' ? entry.user : undefined
  const user =
    typeof entry.user === 'string' ? nameOf(entry.user) : (entry.user?.name ?? entry.user?.id ?? '')
  return h(
    'li',
    {},
    h('strong', { 'data-user': id }, user || 'system'),
    ` ${entry.summary ?? describeEntry(entry)}`,
    when !== undefined ? h('div', { class: 'muted' }, instantTime(when)) : null,
  )
}

const COMMENT_VERBS: Record<string, string> = {
  'comment.created': 'commented',
  'comment.replied': 'replied',
  'comment.edited': 'edited a comment',
  'comment.deleted': 'deleted a comment',
  'comment.resolved': 'resolved a comment',
  'comment.reopened': 'reopened a comment',
}

/** The audit trail's change types (snapshotter/audit.py; tools/history.py words them alike). */
function describeEntry(entry: HistoryEntry): string {
  const kind = entry.type ?? entry.kind ?? 'event'
  const d = (entry.data ?? {}) as Record<string, unknown>
  const text = (value: unknown): string => (typeof value === 'string' ? value : '')
  const count = (value: unknown): number => (typeof value === 'number' ? value : 0)
  if (kind === 'edit') {
    const formatted = count(d.formatted) ? `, formatted ${count(d.formatted)}` : ''
    const counts = `+${count(d.inserted)} −${count(d.deleted)} characters${formatted}`
    // The content the letter was created with is its own row (snapshotter/fold.py).
    return d.initial === true ? `created the content: ${counts}` : `edited: ${counts}`
  }
  if (kind === 'session-start') return `joined${d.role ? ` as ${text(d.role)}` : ''}`
  if (kind === 'session-end') return 'left'
  if (kind === 'letter.created') return 'created the letter'
  if (kind === 'version') {
    // Only a named version is someone's choice; an autosave or session-end their edit or leave
    // set off (tools/history.py `describe` says the same).
    const verb = d.type === 'named' ? 'saved' : 'triggered'
    return `${verb} version ${count(d.version_number) || ''} (${text(d.type) || 'version'})`
  }
  if (kind.startsWith('comment.')) {
    const verb = COMMENT_VERBS[kind] ?? kind.slice('comment.'.length)
    const body = text(d.body)
    return `${verb}${body ? `: “${body.slice(0, 60)}”` : ''}`
  }
  if (kind.startsWith('lock.')) return `lock ${kind.slice('lock.'.length)} on ${text(d.section)}`
  return kind.replace(/[._-]/g, ' ')
}

/** Contributors are user ids (snapshotter/versions.py) or {id, name} objects. */
function contributorNames(contributors: unknown[] | undefined, nameOf: (id: string) => string): string {
  if (!Array.isArray(contributors)) return ''
  const names = contributors.map((c) => {
    if (typeof c === 'string') return nameOf(c)
    const person = (c ?? {}) as { id?: string; name?: string }
    return person.name ?? (person.id ? nameOf(person.id) : '')
  })
  return names.filter(Boolean).join(', ')
}

function count(entries: number): string {
  return `${entries.toLocaleString()} ${entries === 1 ? 'entry' : 'entries'}`
}

function unavailable(error: unknown, what: string): string {
  if (error instanceof NotAvailable) return `${what}: not available on this server yet.`
  if (error instanceof ApiError && error.status === 403) return `${what}: for auditors only.`
  return `${what}: could not load (${(error as Error).message}).`
}
