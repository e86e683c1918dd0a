// The letter list and "new letter". The gateway's list endpoint is used when it exists; the
// letters this browser opened are always shown, so the page works without it.

import { NotAvailable, type Api, type LetterSummary } from '../api'
import type { Session } from '../auth'
import { h, relativeTime, replaceChildren } from '../dom'
import { recentLetters, rememberLetter } from '../recent'

const CREATOR_ROLES = new Set(['editor', 'service'])

/** `created`: the letter was just made here (its editor takes the focus). */
type Open = (id: string, created?: boolean) => void

export function lettersView(api: Api, session: Session, open: Open): HTMLElement {
  const list = h('ul', { class: 'letter-list', 'aria-busy': 'true' })
  const note = h('p', { class: 'muted small', role: 'status' })
  const view = h(
    'div',
    { class: 'letters-page' },
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'letters-heading' },
      h('h1', { id: 'letters-heading' }, 'Letters'),
      note,
      list,
    ),
    h('div', { class: 'side-forms' }, createForm(api, session, open), openByIdForm(open)),
  )
  void fill(api, session, list, note, open)
  return view
}

async function fill(
  api: Api,
  session: Session,
  list: HTMLElement,
  note: HTMLElement,
  open: (id: string) => void,
): Promise<void> {
  let server: LetterSummary[] = []
  try {
    server = (await api.listLetters()).letters
  } catch (error) {
    note.textContent =
      error instanceof NotAvailable
        ? 'This server has no letter list yet: showing the letters opened in this browser.'
        : `Could not load the letter list (${(error as Error).message}): showing the letters opened in this browser.`
  }
  const recent = recentLetters(session.claims.firmId)
  const opened = new Map(recent.map((item) => [item.letter_id, item.opened_at]))
  const byId = new Map<string, LetterSummary>()
  for (const letter of [...recent, ...server])
    byId.set(letter.letter_id, { ...byId.get(letter.letter_id), ...letter })
  const letters = [...byId.values()].sort(
    (a, b) => (opened.get(b.letter_id) ?? 0) - (opened.get(a.letter_id) ?? 0),
  )
  list.setAttribute('aria-busy', 'false')
  if (letters.length === 0) {
    replaceChildren(list, h('li', { class: 'muted' }, 'No letters yet. Create the first one.'))
    return
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
      return h(
        'li',
        {},
        link,
        h('span', { class: 'muted small' }, when ? `opened ${relativeTime(when)}` : lastChange(letter)),
      )
    }),
  )
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
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const name = title.value.trim() // `required` lets a title of spaces through
    if (!name) {
      error.textContent = 'Give the letter a title.'
      title.focus()
      return
    }
    try {
      const letter = await api.createLetter(name, content.value)
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
