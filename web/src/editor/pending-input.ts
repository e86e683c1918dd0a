// Reads what the browser changed in the letter and ProseMirror has not read yet, before a message
// from the server (a colleague's edit or caret, an app message such as "section.edited") is
// applied.
//
// ProseMirror takes the caret a click or a key (End, arrows) put in the DOM on the browser's next
// "selectionchange" event, a task of its own. A remote edit, caret or decoration applied before
// that task re-renders the letter with the selection ProseMirror still holds (y-tiptap restores
// it from there too) and writes it back to the DOM: the click is lost, and what is typed next
// lands where the caret was, possibly inside the colleague's sentence. Seen in CI: Avery's click
// on another paragraph was undone by Parker's keystrokes, her sentence went into his, and her
// Ctrl+Z then took a space of his along (y-tiptap's diff-based sync can credit one person's space
// to the other where both typed one); and, once only documents and carets were covered, by the
// "section.edited" app message redrawing the recent-edits marks.
//
// A key pressed before that "selectionchange" task runs is the same race without a colleague:
// ProseMirror flushes pending DOM mutations on keydown but not the DOM selection, so Enter right
// after a click split the block the caret was in before it (a new list landed below the closing
// line instead of under "Injuries:"). `readPendingInputFirst` reads it first. So does this
// page's own presence status before it changes ("typing" to "active", on a timer): awareness
// changes redraw the carets, and with them the stale selection.
//
// Redraws that come from no message or key are the same race again: a transaction carrying only
// metas that changes decorations (y-tiptap's carets, put off to a timeout after each awareness
// message; the fading of a colleague's highlight, on a timer; lock marks after a REST answer)
// writes ProseMirror's selection back to the DOM. Chromium runs input before timers queued
// earlier, so such a task can fall between a click and its "selectionchange": under load a
// click was lost 1 run in 6 (CI: Avery's click on Parker's paragraph, while he typed there).
// While a click or key in the letter is unread, `readPendingInputFirst` reads the DOM before each
// such transaction (and rebuilds it on the state that reading produced), and before a press
// outside the letter (a toolbar button acting on the caret). Not at other times: the DOM may then
// lag behind a selection this page set itself.

import { Extension } from '@tiptap/core'
import { Plugin, PluginKey, type Transaction } from '@tiptap/pm/state'
import type { EditorView } from '@tiptap/pm/view'
import type { WebsocketProvider } from 'y-websocket'

// ProseMirror's DOM observer is internal (not in its typings): flush() is what it runs on
// "selectionchange" and on keydown, reading pending DOM changes and the DOM selection.
interface Observed {
  domObserver?: { flush?: () => void }
}

type Handler = (...args: never[]) => unknown

const flush = (view: EditorView): void => (view as unknown as Observed).domObserver?.flush?.()

/** Reads what the browser changed and ProseMirror has not read yet (before something of this
 * page redraws the letter: the status it publishes in awareness redraws the carets). */
export function readPendingInput(view: EditorView | null): void {
  if (view) flush(view)
}

// A transaction's metas are not enumerable through its typings (plugin keys are stored as strings).
interface WithMetas {
  meta: Record<string, unknown>
}

/** A transaction that only carries metas: it redraws (decorations) with the selection it holds. */
const onlyRedraws = (tr: Transaction): boolean =>
  !tr.docChanged && !tr.selectionSet && !tr.storedMarksSet && !tr.scrolledIntoView

/** The same metas on a transaction from `view`'s current state. */
function rebuilt(view: EditorView, tr: Transaction): Transaction {
  const fresh = view.state.tr.setTime(tr.time)
  for (const [key, value] of Object.entries((tr as unknown as WithMetas).meta)) fresh.setMeta(key, value)
  return fresh
}

const composing = (view: EditorView, event?: KeyboardEvent): boolean =>
  view.composing || (event !== undefined && (event.isComposing || event.keyCode === 229))

/** ProseMirror takes the caret where the DOM has it (a click not yet read) before it handles a
 * key, and before a transaction that only redraws while a click or key in the letter has not
 * been read yet; not while composing, where the IME owns the selection. Only then: at other
 * times the DOM may lag behind a selection this page set (a letter opening with the caret at its
 * end, a comment's text selected from the panel), and reading it would undo that. */
export const readPendingInputFirst = Extension.create<Record<string, never>, { unread: boolean }>({
  name: 'readPendingInputFirst',
  addStorage: () => ({ unread: false }),
  dispatchTransaction({ transaction, next }) {
    const view = this.editor.view
    if (transaction.selectionSet) this.storage.unread = false
    if (!this.storage.unread || !onlyRedraws(transaction) || composing(view)) return next(transaction)
    this.storage.unread = false
    const before = view.state
    flush(view) // dispatches (through here) the caret or text the DOM has, if ProseMirror lacks it
    next(view.state === before ? transaction : rebuilt(view, transaction))
  },
  addProseMirrorPlugins() {
    const storage = this.storage
    return [
      new Plugin({
        key: new PluginKey('readPendingInputFirst'),
        props: {
          handleDOMEvents: {
            mousedown: () => {
              storage.unread = true // the browser moves the caret; ProseMirror reads it later
              return false
            },
            keydown: (view, event) => {
              if (!composing(view, event)) flush(view)
              storage.unread = true // End, arrows: as a click
              return false // ProseMirror goes on handling the key
            },
          },
        },
        view: (view) => {
          // ProseMirror reads the DOM on this same event (its own listener): nothing is unread.
          const read = (): void => void (storage.unread = false)
          // A press outside the letter (a toolbar button, "Lock this section", "Comment on
          // selection") right after a click in it: read that click first, while the letter still
          // has focus (ProseMirror ignores the DOM selection of an unfocused letter), or the
          // button's command acts on the caret from before the click.
          const outside = (event: MouseEvent): void => {
            if (storage.unread && !view.dom.contains(event.target as Node | null) && !composing(view)) {
              flush(view)
            }
          }
          const doc = view.dom.ownerDocument
          doc.addEventListener('selectionchange', read)
          doc.addEventListener('mousedown', outside, { capture: true })
          return {
            destroy: () => {
              doc.removeEventListener('selectionchange', read)
              doc.removeEventListener('mousedown', outside, { capture: true })
            },
          }
        },
      }),
    ]
  },
})

/** Make the provider's message handlers (sync, awareness, and those set later, such as the app
 * channel's) read pending DOM input first: y-websocket looks each one up by message type as its
 * message arrives, so the lookup hands out a wrapper. */
export function readInputBeforeMessages(provider: WebsocketProvider, view: () => EditorView | null): void {
  const read = (): void => {
    const current = view()
    if (current) flush(current)
  }
  provider.messageHandlers = new Proxy(provider.messageHandlers, {
    get(target, key, receiver) {
      const handler: unknown = Reflect.get(target, key, receiver)
      if (typeof key !== 'string' || !/^\d+$/.test(key) || typeof handler !== 'function') return handler
      return (...args: never[]) => {
        read()
        return (handler as Handler)(...args)
      }
    },
  })
}
