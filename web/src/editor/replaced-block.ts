// Your caret stays where it was when a colleague changes the type of your block: a paragraph
// made a heading or a list item, or back, a bullet list made a numbered one.
//
// y-tiptap (3.0.9) applies that as the block deleted and a new one inserted (a Yjs element's
// type cannot change). The caret's Yjs position points into the deleted block and resolves to
// the start of the next one, and y-tiptap's fallback (findAbsolutePositionAfterStructuralChange)
// looks for "the Nth block of the same type and text": there is none any more, or it is a
// sibling with the same text. What you typed next went there.
//
// After y-tiptap's transaction, this plugin compares the letter before and after it: where the
// top-level blocks that differ hold, on both sides, the same textblocks with the same text in
// the same order (only their structure changed), a selection end in one of them goes to the
// same offset of the textblock at the same place in that order. Text changed there too, or
// this page's own undo (Yjs restores its selection): y-tiptap's selection stands.

import { Extension } from '@tiptap/core'
import type { Node as PMNode } from '@tiptap/pm/model'
import { Plugin, PluginKey, TextSelection, type EditorState, type Transaction } from '@tiptap/pm/state'
import { ySyncPluginKey } from '@tiptap/y-tiptap'

interface Textblock {
  node: PMNode
  /** Where its content starts. */
  start: number
}

/** The top-level blocks that differ: [from, beforeEnd) before, [from, afterEnd) after. */
interface Changed {
  from: number
  beforeEnd: number
  afterEnd: number
}

function changedBlocks(before: PMNode, after: PMNode): Changed {
  const shorter = Math.min(before.childCount, after.childCount)
  let from = 0
  while (from < shorter && before.child(from).eq(after.child(from))) from++
  let tail = 0
  while (
    tail < shorter - from &&
    before.child(before.childCount - 1 - tail).eq(after.child(after.childCount - 1 - tail))
  )
    tail++
  return { from, beforeEnd: before.childCount - tail, afterEnd: after.childCount - tail }
}

/** The textblocks of the top-level blocks [from, to), in document order. */
function textblocks(doc: PMNode, from: number, to: number): Textblock[] {
  const found: Textblock[] = []
  let pos = 0
  for (let i = 0; i < from; i++) pos += doc.child(i).nodeSize
  for (let i = from; i < to; i++) {
    const block = doc.child(i)
    const blockPos = pos
    if (block.isTextblock) found.push({ node: block, start: pos + 1 })
    else
      block.descendants((node, at) => {
        if (!node.isTextblock) return true
        found.push({ node, start: blockPos + 1 + at + 1 })
        return false
      })
    pos += block.nodeSize
  }
  return found
}

// The same characters and inline leaves (a hard break, an image) at the same offsets; marks may
// differ (a code block drops them).
const inlineText = (node: PMNode): string => node.textBetween(0, node.content.size, '\n', '\ufffc')
const sameText = (a: Textblock, b: Textblock): boolean =>
  a.node.content.size === b.node.content.size && inlineText(a.node) === inlineText(b.node)

const remoteChange = (tr: Transaction): boolean => {
  const sync = tr.getMeta(ySyncPluginKey) as
    { isChangeOrigin?: boolean; isUndoRedoOperation?: boolean } | undefined
  return tr.docChanged && sync?.isChangeOrigin === true && !sync.isUndoRedoOperation
}

/** The selection the caret's block kept, or null: y-tiptap's stands. */
function keptSelection(before: EditorState, after: EditorState): TextSelection | null {
  const selection = before.selection
  if (!(selection instanceof TextSelection)) return null
  const changed = changedBlocks(before.doc, after.doc)
  const old = textblocks(before.doc, changed.from, changed.beforeEnd)
  const now = textblocks(after.doc, changed.from, changed.afterEnd)
  if (!old.length || old.length !== now.length || old.some((block, i) => !sameText(block, now[i]!)))
    return null
  // undefined: outside the changed blocks, where the Yjs position still holds.
  const place = (pos: number): number | null | undefined => {
    const $pos = before.doc.resolve(pos)
    if ($pos.depth === 0) return null
    const index = $pos.index(0)
    if (index < changed.from || index >= changed.beforeEnd) return undefined
    const at = old.findIndex((block) => block.start === $pos.start())
    return at < 0 ? null : now[at]!.start + $pos.parentOffset
  }
  const anchor = place(selection.anchor)
  const head = place(selection.head)
  if (anchor === null || head === null || (anchor === undefined && head === undefined)) return null
  const restored = after.selection
  const kept = TextSelection.create(after.doc, anchor ?? restored.anchor, head ?? restored.head)
  return kept.eq(restored) ? null : kept
}

export const caretInReplacedBlock = Extension.create({
  name: 'caretInReplacedBlock',
  addProseMirrorPlugins() {
    return [
      new Plugin({
        key: new PluginKey('caretInReplacedBlock'),
        appendTransaction(transactions, before, after) {
          const remote = transactions.find(remoteChange)
          if (!remote) return null
          const kept = keptSelection(before, after)
          // y-tiptap's meta again: its state still says the last change was a colleague's.
          return kept && after.tr.setSelection(kept).setMeta(ySyncPluginKey, remote.getMeta(ySyncPluginKey))
        },
      }),
    ]
  },
})
