// What the comments panel tells the user about text of hers it could not send: its status line
// (a failure she has not acted on yet outlives reloads of the list) and the notice keeping a
// reply whose thread a colleague deleted while she typed it.

import { ApiError, Unreachable } from '../api'
import { h } from '../dom'

/** The panel's status line: a failure of the user's last try, else the list's own note ("No
 * comments yet", a load that failed). The list is reloaded whenever anyone comments: a reload
 * changes the note only, so a failure stays until the user tries again (or, one of being
 * offline, until the browser is back online). */
export interface StatusLine {
  /** The list's note, shown unless a failure is. */
  note(text: string): void
  /** A failure of the user's last try. */
  fail(text: string): void
  /** The user tries again: her last failure no longer applies (`only`: if it is this one). */
  clear(only?: string): void
  /** The failure `only`, if still shown, replaced by `text` (what became of that try). */
  swap(only: string, text: string): void
}

export function statusLine(element: HTMLElement): StatusLine {
  let problem = ''
  return {
    note(text) {
      if (!problem) element.textContent = text
    },
    fail(text) {
      problem = element.textContent = text
    },
    clear(only) {
      // The note comes back with the next load; until then the line is empty, as it was before.
      if (problem && (only === undefined || only === problem)) problem = element.textContent = ''
    },
    swap(only, text) {
      if (problem === only) problem = element.textContent = text
    },
  }
}

/** A failed send of the user's `what` ("comment", "reply", "edit", "change"), worded for her.
 * `sentOnline`: the browser was online when the request went out, so it may have reached the
 * server even though no answer came back. `describe`: the wording of any other failure (a
 * refusal). `check`: what to do before sending again when it may have been saved (a user who
 * sees no list of them cannot look). `untilOnline`: nothing was sent (offline), the line goes
 * once online; `unanswered`: it may have been saved. */
export function failure(
  error: unknown,
  what: string,
  sentOnline: boolean,
  describe: (error: unknown) => string,
  check = 'Look for it in the list before sending it again.',
): { text: string; untilOnline: boolean; unanswered: boolean } {
  const maySaved = `your ${what} may have been saved. ${check}`
  if (error instanceof Unreachable)
    return sentOnline
      ? { text: `The server could not be reached: ${maySaved}`, untilOnline: false, unanswered: true }
      : { text: error.message, untilOnline: true, unanswered: false }
  // A 504: the server took it but its log did not confirm it in time; it may still land.
  if (error instanceof ApiError && error.status === 504)
    return {
      text: `The server did not confirm it in time: ${maySaved}`,
      untilOnline: false,
      unanswered: true,
    }
  return { text: describe(error), untilOnline: false, unanswered: false }
}

/** Show `failed` in `line`; one of being offline goes once the browser is back online (the user
 * tries again then, and the message would only mislead). */
export function sayFailure(line: StatusLine, failed: { text: string; untilOnline: boolean }): void {
  line.fail(failed.text)
  if (!failed.untilOnline) return
  window.addEventListener('online', () => line.clear(failed.text), { once: true })
}

/** A reply whose thread went while it was being typed: who deleted it, and the text, kept
 * copyable until dismissed. `onDismiss(focused)`: gone; `focused`, the focus moved to the next
 * notice (else it is the caller's to place: it would fall to <body>). */
export function lostReply(
  deletedBy: string[],
  quote: string,
  text: string,
  onDismiss: (focused: boolean) => void,
): HTMLElement {
  const who = deletedBy.length ? joinNames(deletedBy) : 'A colleague'
  const box = h('textarea', { rows: 3, readonly: true, 'aria-label': 'Your reply, not sent' })
  box.value = text
  const copy = h('button', { type: 'button', class: 'link' }, 'Copy')
  const dismiss = h('button', { type: 'button', class: 'link' }, 'Dismiss')
  const element = h(
    'div',
    { class: 'lost-reply' },
    h('p', { role: 'alert' }, `${who} deleted the thread you were replying to; your reply was not sent:`),
    quote ? h('p', { class: 'muted small' }, `The thread was on “${quote}”.`) : null,
    box,
    h('div', { class: 'comment-actions' }, copy, dismiss),
  )
  copy.addEventListener('click', () => {
    box.select()
    // The clipboard API needs a secure context; the selection's copy works elsewhere.
    const copied = navigator.clipboard?.writeText(text) ?? Promise.reject(new Error('no clipboard'))
    copied.catch(() => document.execCommand('copy')).finally(() => (copy.textContent = 'Copied'))
  })
  dismiss.addEventListener('click', () => {
    const next = (element.nextElementSibling ?? element.previousElementSibling)?.querySelector('textarea')
    element.remove()
    next?.focus()
    onDismiss(Boolean(next))
  })
  return element
}

function joinNames(names: string[]): string {
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`
}
