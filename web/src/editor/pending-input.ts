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
// line instead of under "Injuries:"). `readSelectionBeforeKeys` reads it first. So does this
// page's own presence status before it changes ("typing" to "active", on a timer): awareness
// changes redraw the carets, and with them the stale selection.

import { Extension } from '@tiptap/core'
import { Plugin, PluginKey } from '@tiptap/pm/state'
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

/** Before ProseMirror handles a key, it takes the caret where the DOM has it (a click not yet
 * read); not while composing, where the IME owns the selection. */
export const readSelectionBeforeKeys = Extension.create({
  name: 'readSelectionBeforeKeys',
  addProseMirrorPlugins() {
    return [
      new Plugin({
        key: new PluginKey('readSelectionBeforeKeys'),
        props: {
          handleDOMEvents: {
            keydown: (view, event) => {
              if (!event.isComposing && event.keyCode !== 229 && !view.composing) flush(view)
              return false // ProseMirror goes on handling the key
            },
          },
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
