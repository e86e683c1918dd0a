// A colleague's keystroke as a small change of the letter, not a new letter.
//
// y-tiptap (3.0.9) applies every remote Yjs change by building the whole document anew from
// Yjs (`_typeChanged` clears its Y↔PM mapping first) and dispatching one step that replaces it
// all. Every block is then a new node object: ProseMirror's view compares each block deeply with
// what it shows, prosemirror-tables' fixTables walks the whole letter (it skips identical nodes
// only), and so does every plugin that diffs the documents: 50-400 ms of main thread per
// keystroke of a colleague on a 190 kB letter. Before any plugin sees that transaction, it is
// replaced here by one that replaces only the top-level blocks that differ and keeps the others
// (the same objects): the same document, selection and metas. y-tiptap's mapping is then pointed
// at the kept blocks, as its cache held them before the rebuild, so the next local edit finds
// them by identity instead of comparing each with its Yjs element.

import { Extension } from '@tiptap/core'
import { Fragment, Slice, type Node as PMNode } from '@tiptap/pm/model'
import type { EditorState, Transaction } from '@tiptap/pm/state'
import { Mapping, ReplaceStep } from '@tiptap/pm/transform'
import { ySyncPluginKey } from '@tiptap/y-tiptap'

import { bindingOf } from './anchors'

export const narrowRemoteChanges = Extension.create({
  name: 'narrowRemoteChanges',
  dispatchTransaction({ transaction, next }) {
    next(narrowed(this.editor.state, transaction) ?? transaction)
  },
})

// A transaction's metas are not enumerable through its typings (plugin keys are stored as strings).
interface WithMetas {
  meta: Record<string, unknown>
}

/** y-tiptap's whole-document replacement as a replacement of the blocks that changed; null: not
 * one (a local edit, or nothing in it differs: left as it is). */
export function narrowed(state: EditorState, tr: Transaction): Transaction | null {
  if (tr.getMeta(ySyncPluginKey)?.isChangeOrigin !== true || tr.steps.length !== 1) return null
  const step = tr.steps[0]
  const before = tr.before
  if (!(step instanceof ReplaceStep) || before !== state.doc) return null
  if (step.from !== 0 || step.to !== before.content.size) return null
  const after = tr.doc
  const shorter = Math.min(before.childCount, after.childCount)
  let head = 0
  let from = 0
  while (head < shorter && before.child(head).eq(after.child(head))) from += before.child(head++).nodeSize
  let tail = 0
  let to = before.content.size
  while (
    tail < shorter - head &&
    before.child(before.childCount - 1 - tail).eq(after.child(after.childCount - 1 - tail))
  )
    to -= before.child(before.childCount - 1 - tail++).nodeSize
  if (head + tail === before.childCount && head + tail === after.childCount) return null
  const changed: PMNode[] = []
  for (let i = head; i < after.childCount - tail; i++) changed.push(after.child(i))
  const narrow = state.tr.setTime(tr.time)
  // Never thrown away: where the blocks alone do not make a valid letter, y-tiptap's step stands.
  if (narrow.maybeStep(new ReplaceStep(from, to, new Slice(Fragment.fromArray(changed), 0, 0))).failed)
    return null
  for (const [key, value] of Object.entries((tr as unknown as WithMetas).meta)) narrow.setMeta(key, value)
  // The documents are equal: the same positions, so the selection y-tiptap restored holds.
  if (tr.selectionSet) narrow.setSelection(tr.selection.map(narrow.doc, new Mapping()))
  if (tr.storedMarksSet) narrow.setStoredMarks(tr.storedMarks)
  if (tr.scrolledIntoView) narrow.scrollIntoView()
  keepMapping(state, before, after, head, tail)
  return narrow
}

/** y-tiptap's mapping of the kept blocks' elements, from its new nodes to the kept ones. */
function keepMapping(state: EditorState, before: PMNode, after: PMNode, head: number, tail: number): void {
  const binding = bindingOf(state)
  if (!binding || head + tail === 0) return // every block is new: none to point at
  const kept = new Map<PMNode, PMNode>()
  for (let i = 0; i < head; i++) kept.set(after.child(i), before.child(i))
  for (let i = 1; i <= tail; i++)
    kept.set(after.child(after.childCount - i), before.child(before.childCount - i))
  for (const element of binding.type.toArray()) {
    const node = binding.mapping.get(element)
    const old = node && !Array.isArray(node) ? kept.get(node) : undefined
    if (old) binding.mapping.set(element, old)
  }
}
