// "Save version…": an editor (or a service) saves the letter as it is now as a named version,
// DESIGN.md's `version.saved` (`POST /v1/letters/{id}/versions`). The label is sent NFC-normalised
// and trimmed (the server refuses other forms), then checked here against the server's rule
// (gateway/api/versions.py, names.py) as far as it can be told to a person: 1 to 200
// characters, one line, not blank, no control characters. Its rarer refusals (an invisible
// character, a stray variation selector) come back as the server's 422, shown.

import { ApiError, WRITE_WITHIN_MS, type Api } from '../api'
import { h, submitOnce } from '../dom'
import { failure, sayFailure, statusLine } from './comment-lines'

/** Characters (code points, as Python counts them) a label may have: gateway/api/versions.py. */
export const MAX_LABEL = 200
// C0 and C1 controls (a tab, a line break), DEL, and the line and paragraph separators.
const NOT_ONE_LINE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

/** Why `label` (normalized and trimmed as it is sent) would be refused; null when it would not. */
export function labelProblem(label: string): string | null {
  if (!label) return 'Give the version a label.'
  if (NOT_ONE_LINE.test(label)) return 'A label is one line of text, without control characters.'
  const length = [...label].length
  if (length > MAX_LABEL) return `A label is at most ${MAX_LABEL} characters; this one has ${length}.`
  return null
}

export interface VersionSaver {
  element: HTMLElement
  /** The session is over (`why`: expired, revoked): nothing can be saved; null: back. */
  setClosed(why: string | null): void
}

/** An Enter on "Save version…" this soon after a save closed the form is the save's Enter
 * pressed twice, not a wish to save another: it is ignored (a click still opens the form). */
const REOPEN_GRACE_MS = 1_000

/** `onSaved`: a version was saved (or may have been: no answer), for a versions list shown
 * (`listed`: this user sees one) to load again. `untilConfirmed`: resolves once the server has
 * confirmed this tab's edits (connection.ts; null: it has). */
export function versionSaver(
  api: Api,
  letterId: string,
  listed: boolean,
  onSaved: (label: string) => void,
  untilConfirmed: () => Promise<void> | null,
): VersionSaver {
  const toggle = h(
    'button',
    {
      type: 'button',
      class: 'save-version-toggle',
      'aria-expanded': 'false',
      'aria-controls': 'save-version-form',
    },
    'Save version…',
  )
  const input = h('input', {
    id: 'version-label',
    name: 'label',
    autocomplete: 'off',
    placeholder: 'Draft for client',
    'aria-describedby': 'version-label-hint',
  })
  const cancel = h('button', { type: 'button', class: 'link' }, 'Cancel')
  // tabindex: the form holds the focus while its label is disabled (busy), so Escape still cancels.
  const form = h(
    'form',
    {
      id: 'save-version-form',
      class: 'save-version-form',
      hidden: true,
      tabindex: '-1',
      'aria-label': 'Save a version',
    },
    h('label', { for: 'version-label' }, 'Version label'),
    input,
    h('button', { type: 'submit' }, 'Save'),
    cancel,
    h(
      'p',
      { id: 'version-label-hint', class: 'muted small' },
      `One line, up to ${MAX_LABEL} characters: the letter as it is now is kept under it.`,
    ),
  )
  const status = h('p', { class: 'muted small save-version-status', role: 'status' })
  const line = statusLine(status)

  let dropWait: (() => void) | null = null // the form closed while a save waits for this tab's edits
  let sessionOver = false // setClosed
  let out = false // sending
  /** The request is out (or waiting out a 503 to be sent again by api.ts): it cannot be called
   * back, so nothing that closes the form may pretend to: Cancel and the toggle are disabled. */
  const sending = (on: boolean): void => {
    out = cancel.disabled = on
    toggle.disabled = out || sessionOver
  }
  const show = (open: boolean): void => {
    form.hidden = !open
    toggle.setAttribute('aria-expanded', String(open))
    if (open) input.focus()
  }
  /** Cancel, Escape, or the toggle closing the form: one gesture. */
  const close = (): void => {
    show(false)
    toggle.focus()
    dropWait?.() // nothing sent yet: the save is dropped (a sent one cannot be: see `sending`)
  }
  toggle.addEventListener('click', () => (form.hidden ? show(true) : close()))
  let closedBySave = -Infinity // performance.now() of the last save that closed the form
  toggle.addEventListener('keydown', (event) => {
    const twice = event.timeStamp - closedBySave < REOPEN_GRACE_MS
    if (event.key === 'Enter' && (twice || event.repeat)) event.preventDefault() // no click
  })
  cancel.addEventListener('click', close)
  // From the form too: it has the focus while the label is disabled. A disabled Cancel ignores it.
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') cancel.click()
  })
  input.addEventListener('input', () => input.removeAttribute('aria-invalid'))

  const refuse = (text: string): void => {
    line.fail(text)
    input.setAttribute('aria-invalid', 'true')
    if (!form.hidden) input.focus()
  }

  /** A save is in flight (maybe waiting out a 503): the label can be neither changed nor sent
   * again (a label entered meanwhile was dropped, then cleared with the saved one's). */
  const busy = (on: boolean): void => {
    // Disabling the label (or the Save clicked) would take the focus to the page: the form
    // keeps it, for Escape.
    const here = form.contains(document.activeElement) || document.activeElement === document.body
    if (on && here) form.focus()
    input.disabled = on
    const lost = document.activeElement === document.body || document.activeElement === form
    if (!on && !form.hidden && lost) input.focus() // back, for a correction
  }

  let giveUp: (() => void) | null = null // the session ended while a save waited (setClosed)
  /** Until the server has this tab's edits: the version is the letter as the server has it when
   * the save lands, so one saved while the last edit was still on its way (the socket
   * reconnecting, the echo not back yet) missed it. `ended`: the session ended first;
   * `cancelled`: the user cancelled; `late`: not confirmed within a write's deadline. A socket
   * that stays open while the log is down never confirms them (the gateway holds the appends,
   * closes with 4503, the page resends), and offline it could be hours: the save waited, its
   * status on, for good. The wait is part of the save as the user sees it, so it gets the
   * deadline the page gives the save's own request. */
  type Waited = 'in' | 'ended' | 'cancelled' | 'late'
  const ownEditsIn = (): Promise<Waited> | 'in' => {
    const waiting = untilConfirmed()
    if (!waiting) return 'in'
    line.note('Saving after your last changes reach the server…')
    let timer = 0
    return new Promise<Waited>((resolve) => {
      giveUp = () => resolve('ended')
      dropWait = () => resolve('cancelled')
      timer = window.setTimeout(() => resolve('late'), WRITE_WITHIN_MS)
      void waiting.then(() => resolve('in'))
    }).finally(() => {
      giveUp = dropWait = null
      clearTimeout(timer)
    })
  }

  // Enter in the label submits; the Save button is disabled while the request is in flight, so
  // a double click saves one version (each request would be one: the server saves a named
  // version even when nothing changed since the last).
  submitOnce(form, async () => {
    line.clear() // tried again: the outcome replaces the last failure
    const label = input.value.normalize('NFC').trim() // NFC and no blank ends: the server's rule
    const wrong = labelProblem(label)
    if (wrong) {
      refuse(wrong) // nothing sent
      return
    }
    busy(true)
    const waited = await ownEditsIn()
    if (waited !== 'in') {
      busy(false) // the label kept for another try, as a Cancel without a save keeps it
      if (waited === 'cancelled') line.note('Not saved.')
      else if (waited === 'late') line.fail(notConfirmed(navigator.onLine))
      else line.fail('The version was not saved: your last changes could not reach the server.')
      return
    }
    const sentOnline = navigator.onLine
    line.note('Saving…')
    sending(true)
    try {
      // A 503 `log behind` (with Retry-After) wrote nothing: api.ts sends it again after the wait.
      await api.saveVersion(letterId, label, (seconds) =>
        line.note(`The server is busy; trying again in ${seconds} s.`),
      )
    } catch (error) {
      sending(false)
      busy(false)
      const check = listed
        ? 'Look for it in the versions list before saving it again.'
        : 'Saving it again may save a second one.'
      const failed = failure(error, 'version', sentOnline, describe, check)
      if (error instanceof ApiError && error.status === 422) refuse(failed.text)
      else sayFailure(line, failed)
      if (failed.unanswered) onSaved(label) // the list shows whether it was
      return
    }
    input.value = ''
    input.removeAttribute('aria-invalid')
    input.disabled = false // the focus stays where it went: see below
    sending(false)
    const inForm = form.contains(document.activeElement) || document.activeElement === document.body
    show(false)
    closedBySave = performance.now()
    if (inForm) toggle.focus() // not taken from where the user went meanwhile (the letter)
    line.note(`Saved version “${label}”.`)
    onSaved(label)
  })

  return {
    element: h('div', { class: 'save-version' }, toggle, form, status),
    setClosed(why) {
      sessionOver = why !== null
      toggle.disabled = sessionOver || out // not enabled while a request is out
      if (why !== null) {
        show(false)
        giveUp?.() // its edits cannot reach the server now
      }
    },
  }
}

/** A save given up because this tab's edits were not confirmed in time: nothing was sent. */
function notConfirmed(online: boolean): string {
  const why = online ? 'the server has not confirmed them' : 'you are offline'
  return (
    `The version was not saved: your last changes did not reach the server within ` +
    `${WRITE_WITHIN_MS / 1000} s (${why}). Try again once the letter shows “all changes saved”.`
  )
}

function describe(error: unknown): string {
  if (!(error instanceof ApiError)) return String(error)
  // 422 names the field: `invalid request: body.label: Value error, one line of text, ...`.
  if (error.status === 422)
    return `The server refused the label: ${error.message.replace(/^.*?body\.label: (Value error, )?/, '')}`
  if (error.status === 503 && error.retryAfter !== null)
    return `The server could not save it yet (${error.message}): try again in ${Math.ceil(error.retryAfter)} s.`
  return `The server refused: ${error.message}`
}
