// The letter for the roles that may read it but not write it (commenter, viewer, auditor).
//
// ProseMirror's `editable: false` makes the letter contenteditable=false: no caret, so a keyboard
// user could not select text (Shift+arrows), nor comment on it. These roles get an editable
// letter instead, with a caret and every native selection key, whose document nothing they do
// changes: the gateway refuses their updates anyway, and the page must neither diverge from the
// server nor show a refusal for a keystroke.
//
// - Transactions that change the document are refused unless y-tiptap made them (a colleague's
//   edit, the letter arriving: they carry its meta). Keys, paste, drop, cut, formatting commands
//   and the fixes plugins append all end there. Undo needs nothing: Yjs' undo stack holds only
//   this page's own edits, and there are none.
// - `beforeinput` is cancelled, so the browser does not put typed, spell-corrected or pasted
//   text in the DOM first. IME composition cannot be cancelled: the DOM observer reads it, the
//   transaction is refused, and ProseMirror draws the letter again from its state.
// - A key that could only write (a character, Backspace, Delete, Enter) is cancelled before any
//   keymap. No key is "typing" to the colleagues: presence.ts counts none in an aria-readonly
//   letter.
// - Tab and Shift+Tab leave the letter, forward and back, from any caret (a list item, any table
//   cell), as from a read-only field: the browser moves the focus to the next or previous control
//   in the page's order (a task's box in the letter is one). The keymaps would claim them: a
//   list's to sink or lift the item, refused here (the focus would be stuck); a table's to go to
//   the next or previous cell, which the arrows do, and a reader could not tell what Tab does
//   without knowing which block the caret is in.
// - A task's checkbox is not ticked: TipTap's TaskItem view ticks it on "change" and asks for a
//   command (refused here) only when the editor is editable, which the letter is for these roles.
//   Cancelling the click (a label's click reaches its box as one) keeps the box as the document
//   says: no toggle, no "change".

import { Extension } from '@tiptap/core'
import { Plugin, PluginKey } from '@tiptap/pm/state'
import { ySyncPluginKey } from '@tiptap/y-tiptap'

const refuse = (_view: unknown, event: Event): boolean => {
  event.preventDefault()
  return true // ProseMirror's own handler is not run
}

const movesFocus = (event: KeyboardEvent): boolean =>
  event.key === 'Tab' && !event.ctrlKey && !event.metaKey && !event.altKey

const checkbox = (event: Event): boolean =>
  event.target instanceof HTMLInputElement && event.target.type === 'checkbox'

const WRITING_KEYS = new Set(['Backspace', 'Delete', 'Enter'])
const writes = (event: KeyboardEvent): boolean =>
  WRITING_KEYS.has(event.key) || (event.key.length === 1 && !event.ctrlKey && !event.metaKey)

export const readOnly = Extension.create({
  name: 'readOnly',
  priority: 1000, // its keys before any keymap's
  addProseMirrorPlugins() {
    return [
      new Plugin({
        key: new PluginKey('readOnly'),
        filterTransaction: (tr) => !tr.docChanged || tr.getMeta(ySyncPluginKey) !== undefined,
        props: {
          // No spelling marks to correct, no on-screen keyboard to type with.
          attributes: { 'aria-readonly': 'true', spellcheck: 'false', inputmode: 'none' },
          handleDOMEvents: {
            beforeinput: refuse,
            paste: refuse,
            drop: refuse,
            click: (view, event) => checkbox(event) && refuse(view, event),
            // true: ProseMirror runs no keymap; not cancelled: the browser moves the focus.
            keydown: (_view, event) => movesFocus(event),
          },
          // true: ProseMirror cancels it: no beforeinput, no keymap.
          handleKeyDown: (_view, event) => writes(event),
        },
      }),
    ]
  },
})
