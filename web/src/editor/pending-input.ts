// Reads what the browser changed in the letter and ProseMirror has not read yet, before a message
// from the server (a colleague's edit or caret) is applied.
//
// ProseMirror takes the caret a click or a key (End, arrows) put in the DOM on the browser's next
// "selectionchange" event, a task of its own. A remote edit or caret applied before that task
// re-renders the letter with the selection ProseMirror still holds (y-tiptap restores it from
// there too) and writes it back to the DOM: the click is lost, and what is typed next lands where
// the caret was, possibly inside the colleague's sentence. Seen in CI: Avery's click on another
// paragraph was undone by Parker's keystrokes, her sentence went into his, and her Ctrl+Z then
// took a space of his along (y-tiptap's diff-based sync can credit one person's space to the
// other where both typed one). ProseMirror reads the DOM first before a key for the same reason.

import type { EditorView } from '@tiptap/pm/view'
import type { WebsocketProvider } from 'y-websocket'

// ProseMirror's DOM observer is internal (not in its typings): flush() is what it runs on
// "selectionchange" and on keydown, reading pending DOM changes and the DOM selection.
interface Observed {
  domObserver?: { flush?: () => void }
}

/** Make the provider's message handlers (sync, awareness) read pending DOM input first. */
export function readInputBeforeMessages(provider: WebsocketProvider, view: () => EditorView | null): void {
  const handlers = provider.messageHandlers
  handlers.forEach((handler, type) => {
    handlers[type] = (...args: Parameters<typeof handler>) => {
      const current = view()
      if (current) (current as unknown as Observed).domObserver?.flush?.()
      handler(...args)
    }
  })
}
