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
// "section.edited" app message redrawing the recent-edits marks. ProseMirror reads the DOM first
// before a key for the same reason.

import type { EditorView } from '@tiptap/pm/view'
import type { WebsocketProvider } from 'y-websocket'

// ProseMirror's DOM observer is internal (not in its typings): flush() is what it runs on
// "selectionchange" and on keydown, reading pending DOM changes and the DOM selection.
interface Observed {
  domObserver?: { flush?: () => void }
}

type Handler = (...args: never[]) => unknown

/** Make the provider's message handlers (sync, awareness, and those set later, such as the app
 * channel's) read pending DOM input first: y-websocket looks each one up by message type as its
 * message arrives, so the lookup hands out a wrapper. */
export function readInputBeforeMessages(provider: WebsocketProvider, view: () => EditorView | null): void {
  const read = (): void => {
    const current = view()
    if (current) (current as unknown as Observed).domObserver?.flush?.()
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
