// y-tiptap's text diff, told where the caret is.
//
// y-tiptap (3.0.9, `updateYText`) writes a local edit to Yjs by diffing the paragraph's text in
// Yjs with ProseMirror's: lib0's `simpleDiff` takes the longest common prefix, so a character
// typed just before an equal one is credited to the place after it. The letter reads the same,
// but the Yjs items are swapped: Parker's "x" typed before Avery's "x" became the one after it,
// his next key went between them, and Avery's Ctrl+Z (which deletes her items) turned his "xy"
// into "yx" for everyone. The build (vite.config.ts) hands y-tiptap this module for
// `lib0/diff`: the same minimal diff, placed to end at the caret where the text allows more than
// one place (a run of equal characters); any other diff is lib0's own.

import { simpleDiffString } from 'lib0/diff'

export * from 'lib0/diff'

export interface Diff {
  index: number
  remove: number
  insert: string
}

/** The caret in its run of text (one Yjs text: the text between two inline nodes). */
export interface CaretRun {
  text: string
  offset: number
}

let caretRun: (() => CaretRun | null) | null = null

/** Where the caret is, asked at each diff; returns the unregister function. */
export function diffAtCaret(source: () => CaretRun | null): () => void {
  caretRun = source
  return () => {
    if (caretRun === source) caretRun = null
  }
}

/** lib0's `simpleDiff` for y-tiptap, moved to the caret when `b` is the caret's text. */
export function simpleDiff(a: string, b: string): Diff {
  const plain = simpleDiffString(a, b)
  const caret = caretRun?.()
  return caret && caret.text === b ? atCaret(a, b, plain, caret.offset) : plain
}

const HIGH_SURROGATE = /[\uD800-\uDBFF]/
const LOW_SURROGATE = /[\uDC00-\uDFFF]/

/**
 * `plain` (the change as far right as it goes: the longest common prefix) moved left, as far as
 * the common suffix allows, towards ending at `cursor` in `b`: the same number of characters
 * removed and inserted, so never a larger diff than lib0's.
 */
export function atCaret(a: string, b: string, plain: Diff, cursor: number): Diff {
  if (plain.remove === 0 && plain.insert.length === 0) return plain
  const kept = a.length - plain.remove // the common prefix and suffix
  const plainRight = kept - plain.index
  let suffix = plainRight
  while (suffix < kept && a[a.length - suffix - 1] === b[b.length - suffix - 1]) suffix++
  const right = Math.min(Math.max(b.length - cursor, plainRight), suffix)
  if (right === plainRight) return plain
  const index = kept - right
  // Never between the halves of a surrogate pair.
  if (index > 0 && HIGH_SURROGATE.test(a[index - 1]!)) return plain
  if (LOW_SURROGATE.test(a[a.length - right]!)) return plain
  return { index, remove: plain.remove, insert: b.slice(index, b.length - right) }
}
