// The letter list and "new letter". The gateway's list endpoint is used when it exists; the
// letters this browser opened are always shown, so the page works without it.

import { NotAvailable, type Api, type LetterPage, type LetterSummary } from '../api'
import type { Session } from '../auth'
import { h, randomKey, relativeTime, replaceChildren, submitOnce } from '../dom'
import { recentLetters, rememberLetter } from '../recent'

const CREATOR_ROLES = new Set(['editor', 'service'])

/** `created`: the letter was just made here (its editor takes the focus). */
type Open = (id: string, created?: boolean) => void

export function lettersView(api: Api, session: Session, open: Open): HTMLElement {
  const list = h('ul', { class: 'letter-list', 'aria-busy': 'true' })
  const note = h('p', { class: 'muted small', role: 'status' })
  const more = h('button', { type: 'button', class: 'more-letters', hidden: true }, MORE)
  const moreError = h('p', { class: 'error', role: 'alert' })
  const view = h(
    'div',
    { class: 'letters-page' },
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'letters-heading' },
      h('h1', { id: 'letters-heading' }, 'Letters'),
      note,
      list,
      more,
      moreError,
    ),
    h('div', { class: 'side-forms' }, createForm(api, session, open), openByIdForm(open)),
  )
  void fill(api, session, { list, note, more, moreError }, open)
  return view
}

const MORE = 'Show more letters'

interface ListParts {
  list: HTMLElement
  note: HTMLElement
  /** Shown while the server has more pages: appends the next one. */
  more: HTMLButtonElement
  moreError: HTMLElement
}

async function fill(api: Api, session: Session, parts: ListParts, open: (id: string) => void): Promise<void> {
  const { list, note, more, moreError } = parts
  // The server's letters, newest first, each once: a letter created while the pages are walked
  // can come on two of them (gateway/listing.py).
  const server = new Map<string, LetterSummary>()
  let next: string | null = null
  const take = (page: LetterPage): void => {
    for (const letter of page.letters) if (!server.has(letter.letter_id)) server.set(letter.letter_id, letter)
    next = page.next
    more.hidden = next === null
  }
  try {
    take(await api.listLetters())
  } catch (error) {
    note.textContent =
      error instanceof NotAvailable
        ? 'This server has no letter list yet: showing the letters opened in this browser.'
        : `Could not load the letter list (${(error as Error).message}): showing the letters opened in this browser.`
  }
  show(session, list, [...server.values()], open)

  let loading = false
  more.addEventListener('click', async () => {
    if (loading || next === null) return
    // aria-disabled, not disabled: a disabled button would lose the keyboard focus.
    loading = true
    more.setAttribute('aria-disabled', 'true')
    more.textContent = 'Loading more letters…'
    list.setAttribute('aria-busy', 'true')
    moreError.textContent = ''
    const before = new Set(server.keys())
    try {
      const page = await api.listLetters(next)
      const focused = document.activeElement === more // before hiding it blurs it
      take(page)
      const links = show(session, list, [...server.values()], open)
      if (more.hidden && focused) {
        // The button is gone: the keyboard goes on from the first letter it brought.
        const first = [...server.keys()].find((id) => !before.has(id))
        ;(first === undefined ? undefined : links.get(first))?.focus()
      }
    } catch (error) {
      moreError.textContent = `Could not load more letters (${(error as Error).message}): try again.`
      list.setAttribute('aria-busy', 'false')
    } finally {
      loading = false
      more.removeAttribute('aria-disabled')
      more.textContent = MORE
    }
  })
}

/** The list: the letters this browser opened (last opened first), then the server's others in
 * its order. Returns each letter's link. */
function show(
  session: Session,
  list: HTMLElement,
  server: LetterSummary[],
  open: (id: string) => void,
): Map<string, HTMLAnchorElement> {
  const recent = recentLetters(session.claims.firmId)
  const opened = new Map(recent.map((item) => [item.letter_id, item.opened_at]))
  const byId = new Map<string, LetterSummary>()
  for (const letter of [...recent, ...server])
    byId.set(letter.letter_id, { ...byId.get(letter.letter_id), ...letter })
  const letters = [...byId.values()].sort(
    (a, b) => (opened.get(b.letter_id) ?? 0) - (opened.get(a.letter_id) ?? 0),
  )
  list.setAttribute('aria-busy', 'false')
  const links = new Map<string, HTMLAnchorElement>()
  if (letters.length === 0) {
    replaceChildren(list, h('li', { class: 'muted' }, 'No letters yet. Create the first one.'))
    return links
  }
  replaceChildren(
    list,
    ...letters.map((letter) => {
      const when = opened.get(letter.letter_id)
      const link = h(
        'a',
        { href: `#/letters/${encodeURIComponent(letter.letter_id)}` },
        letter.title || 'Untitled letter',
      )
      link.addEventListener('click', (event) => {
        event.preventDefault()
        open(letter.letter_id)
      })
      links.set(letter.letter_id, link)
      return h(
        'li',
        {},
        link,
        h('span', { class: 'muted small' }, when ? `opened ${relativeTime(when)}` : lastChange(letter)),
      )
    }),
  )
  return links
}

function createForm(api: Api, session: Session, open: Open): HTMLElement {
  const title = h('input', {
    id: 'new-title',
    name: 'title',
    required: true,
    maxlength: 200,
    placeholder: 'Demand letter: Smith v. Acme Insurance',
  })
  const content = h('textarea', {
    id: 'new-content',
    name: 'content',
    rows: 4,
    placeholder: 'Optional opening text (one paragraph per line)',
  })
  const error = h('p', { class: 'error', role: 'alert' })
  const allowed = CREATOR_ROLES.has(session.claims.role)
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'new-heading' },
    h('h2', { id: 'new-heading' }, 'New letter'),
    h('label', { for: 'new-title' }, 'Title'),
    title,
    h('label', { for: 'new-content' }, 'Opening text'),
    content,
    h('button', { type: 'submit', disabled: !allowed }, 'Create letter'),
    allowed
      ? null
      : h('p', { class: 'muted small' }, `Your role (${session.claims.role}) cannot create letters.`),
    error,
  )
  // One key per form fill: a second submit of the same title and text (a double click, a retry
  // after no answer) answers the letter the first one made; a changed fill is another letter.
  let key: string | null = null
  form.addEventListener('input', () => (key = null))
  submitOnce(form, async () => {
    const name = title.value.normalize('NFC').trim() // `required` lets a title of spaces through; NFC: the server's rule
    if (!name) {
      error.textContent = 'Give the letter a title.'
      title.focus()
      return
    }
    key ??= randomKey()
    try {
      const letter = await api.createLetter(name, content.value, key)
      rememberLetter(session.claims.firmId, letter)
      open(letter.letter_id, true)
    } catch (err) {
      error.textContent = `Could not create the letter: ${(err as Error).message}`
    }
  })
  return form
}

function openByIdForm(open: (id: string) => void): HTMLElement {
  const input = h('input', { id: 'open-id', name: 'letter', required: true, placeholder: 'Letter id' })
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'open-heading' },
    h('h2', { id: 'open-heading' }, 'Open a letter'),
    h('label', { for: 'open-id' }, 'Letter id (shared by a colleague)'),
    input,
    h('button', { type: 'submit' }, 'Open'),
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    if (input.value.trim()) open(input.value.trim())
  })
  return form
}

function lastChange(letter: LetterSummary): string {
  const at = letter.updated_at ?? letter.created_at
  const ms = typeof at === 'number' ? at : at ? Date.parse(at) : Number.NaN
  return Number.isNaN(ms) ? letter.letter_id : `changed ${relativeTime(ms)}`
}
