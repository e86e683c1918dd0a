// Plain-text offsets as the gateway counts them (gateway/content.py: one line per block), the
// range a remote change touched, and a word diff for "what changed against the current text".

import type { Node as PMNode } from '@tiptap/pm/model'
import type { EditorState } from '@tiptap/pm/state'
import { StepMap } from '@tiptap/pm/transform'

export function plainText(doc: PMNode): string {
  return doc.textBetween(0, doc.content.size, '\n')
}

/** The plain-text offset of a document position, in code points as the server counts them
 * (ProseMirror counts UTF-16 units: an emoji is 2 positions, 1 offset). A position between the
 * halves of a surrogate pair counts the pair once both halves are behind it. */
export function textOffset(doc: PMNode, pos: number): number {
  const text = doc.textBetween(0, pos, '\n')
  let count = 0
  for (const _ of text) count++ // iterates code points; a lone surrogate counts as one
  const last = text.charCodeAt(text.length - 1)
  return last >= 0xd800 && last <= 0xdbff ? count - 1 : count
}

/** The document position at a plain-text offset (the first one, at block boundaries); never
 * one inside a surrogate pair, as textOffset only grows past the pair's second half. */
export function positionAt(doc: PMNode, offset: number): number {
  let low = 0
  let high = doc.content.size
  while (low < high) {
    const mid = (low + high) >> 1
    if (textOffset(doc, mid) < offset) low = mid + 1
    else high = mid
  }
  return low
}

export interface Change {
  from: number
  to: number // in the new document
  map: StepMap // old document positions to new ones
}

/** The one range that differs; remote transactions replace the whole document, so diff it. */
export function changedRange(before: EditorState, after: EditorState): Change | null {
  const start = before.doc.content.findDiffStart(after.doc.content)
  const end = before.doc.content.findDiffEnd(after.doc.content)
  if (start === null || end === null) return null
  // findDiffEnd can overlap findDiffStart when repeated text makes the diff ambiguous.
  const overlap = Math.max(0, start - Math.min(end.a, end.b))
  const oldEnd = end.a + overlap
  const newEnd = end.b + overlap
  return { from: start, to: newEnd, map: new StepMap([start, oldEnd - start, newEnd - start]) }
}

export type DiffPart = { kind: 'same' | 'added' | 'removed'; text: string }

/** Word-level diff (Myers, O(ND)); whitespace stays attached so the text reads naturally. */
export function diffWords(before: string, after: string): DiffPart[] {
  const a = before.match(/\s*\S+|\s+/g) ?? []
  const b = after.match(/\s*\S+|\s+/g) ?? []
  const trace = myers(a, b)
  const parts: DiffPart[] = []
  const push = (kind: DiffPart['kind'], text: string): void => {
    const last = parts[parts.length - 1]
    if (last?.kind === kind) last.text += text
    else parts.push({ kind, text })
  }
  let x = a.length
  let y = b.length
  const ops: [DiffPart['kind'], string][] = []
  for (let d = trace.length - 1; d >= 0 && (x > 0 || y > 0); d--) {
    const v = trace[d]!
    const k = x - y
    const down = k === -d || (k !== d && (v.get(k - 1) ?? -1) < (v.get(k + 1) ?? -1))
    const prevK = down ? k + 1 : k - 1
    const prevX = d === 0 ? 0 : (v.get(prevK) ?? 0)
    const prevY = prevX - prevK
    while (x > prevX && y > prevY) (ops.push(['same', a[--x]!]), y--)
    if (d > 0) {
      if (down) ops.push(['added', b[--y]!])
      else ops.push(['removed', a[--x]!])
    }
  }
  for (let i = ops.length - 1; i >= 0; i--) push(ops[i]![0], ops[i]![1])
  return parts
}

function myers(a: string[], b: string[]): Map<number, number>[] {
  const trace: Map<number, number>[] = []
  const v = new Map<number, number>([[1, 0]])
  for (let d = 0; d <= a.length + b.length; d++) {
    trace.push(new Map(v))
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && (v.get(k - 1) ?? -1) < (v.get(k + 1) ?? -1))
      let x = down ? (v.get(k + 1) ?? 0) : (v.get(k - 1) ?? 0) + 1
      let y = x - k
      while (x < a.length && y < b.length && a[x] === b[y]) (x++, y++)
      v.set(k, x)
      if (x >= a.length && y >= b.length) return trace
    }
  }
  return trace
}
