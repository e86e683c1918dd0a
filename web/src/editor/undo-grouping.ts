// Keeps Ctrl+Z undoing what you typed in one go while a colleague types elsewhere.
//
// y-tiptap's sync plugin keeps `addToHistory` in its state and updates it only on transactions
// that change the document. A remote change sets it to false; the next transaction that does
// not change the document (a remote caret moving, a highlight expiring) then finds it false,
// takes itself for a local "not for history" edit and calls the undo manager's stopCapturing():
// your sentence is cut into one undo step per keystroke. After a remote change we set it back
// to true, as the next local edit would.

import { Extension } from '@tiptap/core'
import { Plugin, PluginKey } from '@tiptap/pm/state'
import { ySyncPluginKey } from '@tiptap/y-tiptap'

export const undoGrouping = Extension.create({
  name: 'undoGrouping',
  addProseMirrorPlugins() {
    return [
      new Plugin({
        key: new PluginKey('undoGrouping'),
        appendTransaction: (transactions, _before, after) => {
          const remote = transactions.some(
            (tr) => tr.docChanged && tr.getMeta(ySyncPluginKey)?.isChangeOrigin === true,
          )
          const state = ySyncPluginKey.getState(after) as { addToHistory?: boolean } | undefined
          if (!remote || state?.addToHistory !== false) return null
          return after.tr.setMeta(ySyncPluginKey, { addToHistory: true })
        },
      }),
    ]
  },
})
