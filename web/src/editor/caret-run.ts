// Tells y-tiptap's diff (caret-diff.ts) where this editor's caret is, so that what is typed is
// credited to the caret's place in Yjs, not to the place after equal characters.

import { Extension } from '@tiptap/core'
import type { EditorState } from '@tiptap/pm/state'

import { diffAtCaret, type CaretRun } from './caret-diff'

/** The caret's run of text: the text nodes around it up to the next inline node either way, as
 * y-tiptap keeps them in one Yjs text; null without a collapsed or text selection in text. */
export function caretRunOf(state: EditorState): CaretRun | null {
  const { $head } = state.selection
  const parent = $head.parent
  if (!parent.inlineContent || !state.selection.$anchor.sameParent($head)) return null
  const at = $head.parentOffset
  let start = 0
  let text = ''
  let offset = 0
  for (let i = 0; i < parent.childCount; i++) {
    const child = parent.child(i)
    if (child.isText) {
      text += child.text ?? ''
    } else {
      if (at >= start && at <= start + text.length && text) return { text, offset: at - start }
      start = offset + child.nodeSize
      text = ''
    }
    offset += child.nodeSize
  }
  return at >= start && at <= start + text.length && text ? { text, offset: at - start } : null
}

export const typingAtCaret = Extension.create<Record<string, never>, { stop: () => void }>({
  name: 'typingAtCaret',
  addStorage: () => ({ stop: () => {} }),
  onCreate() {
    const editor = this.editor
    this.storage.stop = diffAtCaret(() => (editor.isDestroyed ? null : caretRunOf(editor.state)))
  },
  onDestroy() {
    this.storage.stop()
  },
})
