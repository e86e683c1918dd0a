// Plain-text offsets as the gateway counts them (gateway/content.py `_walk`, the snapshotter's
// `_block_text`): a hard break is one "\n" (schema.ts gives it that `leafText`); in an element, a
// run of inline children (text, hard breaks, images: the server's INLINE) is one line and every
// other child a line of its own, "\n" between lines; the document's children are all lines. Here
// an image is a block leaf (TipTap's Image is not inline), so: each textblock, rule and image is
// a line, but for an image right after another in anything but the document (a quote, a list
// item, a cell): both are in one empty line. Also the range a remote change touched, and a word
// diff for "what changed against the current text".

import type { Node as PMNode } from '@tiptap/pm/model'
import type { EditorState } from '@tiptap/pm/state'
import { StepMap } from '@tiptap/pm/transform'

export function plainText(doc: PMNode): string {
  return indexOf(doc).text
}

/** The plain-text offset of a document position, in code points as the server counts them
 * (ProseMirror counts UTF-16 units: an emoji is 2 positions, 1 offset). A position between the
 * halves of a surrogate pair counts the pair once both halves are behind it. */
export function textOffset(doc: PMNode, pos: number): number {
  const index = indexOf(doc)
  const units = unitsBefore(index, pos)
  const pairs = countBelow(index.pairEnds, units + 1) // whole before `units`: one code point each
  const last = index.text.charCodeAt(units - 1)
  return units - pairs - (last >= 0xd800 && last <= 0xdbff ? 1 : 0)
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

// Both functions read the text before `pos` (`doc.textBetween(0, pos, '\n')` but for block
// leaves); walking the document for each position cost a long letter's comment event half a
// second (every anchor end, at every step of the search). A document is immutable: its text and
// where each piece starts are worked out once, in one walk as textBetween's, and kept while the
// document is.
interface TextIndex {
  text: string // the letter's plain text: the text before any position is a prefix of it
  starts: number[] // the position each piece of `text` is taken from, ascending
  units: number[] // the length of `text` before each piece
  sliced: boolean[] // a text node, cut at the position (else a separator or a leaf: whole)
  pairEnds: number[] // the index in `text` just after each surrogate pair, ascending
}

const indexes = new WeakMap<PMNode, TextIndex>()

function indexOf(doc: PMNode): TextIndex {
  let index = indexes.get(doc)
  if (index) return index
  const pieces: string[] = []
  index = { text: '', starts: [], units: [], sliced: [], pairEnds: [] }
  let length = 0
  const add = (start: number, text: string, sliced: boolean): void => {
    index!.starts.push(start)
    index!.units.push(length)
    index!.sliced.push(sliced)
    pieces.push(text)
    length += text.length
  }
  // As Fragment.textBetween does, from 0: a node counts once it starts before the position. But
  // a block leaf (an image, a rule) is a line, empty, as on the server; textBetween skips it.
  let first = true
  doc.descendants((node, pos, parent, index) => {
    const text = node.isText
      ? node.text!
      : node.isLeaf && node.type.spec.leafText
        ? node.type.spec.leafText(node)
        : ''
    const sameLine =
      parent !== doc && inlineOnServer(node) && index > 0 && inlineOnServer(parent!.child(index - 1))
    if (node.isBlock && (node.isLeaf || node.isTextblock) && !sameLine) {
      if (first) first = false
      else add(pos, '\n', false)
    }
    if (text) add(pos, text, node.isText)
  })
  index.text = pieces.join('')
  const text = index.text
  for (let i = 1; i < text.length; i++) {
    const code = text.charCodeAt(i)
    const before = text.charCodeAt(i - 1)
    if (code >= 0xdc00 && code <= 0xdfff && before >= 0xd800 && before <= 0xdbff) index.pairEnds.push(i + 1)
  }
  indexes.set(doc, index)
  return index
}

// The server's inline leaves, one run of them a line (gateway/content.py and snapshotter/document.py
// INLINE; keep the three equal). Text and hard breaks are inline here too, so a textblock's run; an
// image is a block, and its siblings are blocks (ProseMirror mixes no inline and block children):
// a block is on its previous sibling's line only when both are images.
const INLINE = new Set(['text', 'hardBreak', 'hard_break', 'image'])
const inlineOnServer = (node: PMNode): boolean => INLINE.has(node.type.name)

/** The length of the plain text before `pos`. */
function unitsBefore(index: TextIndex, pos: number): number {
  const piece = countBelow(index.starts, pos) - 1 // the last one starting before `pos`
  if (piece < 0) return 0
  const end = index.units[piece + 1] ?? index.text.length
  const units = index.units[piece]!
  return index.sliced[piece] ? Math.min(end, units + pos - index.starts[piece]!) : end
}

/** How many of the ascending `values` are below `limit`. */
function countBelow(values: number[], limit: number): number {
  let low = 0
  let high = values.length
  while (low < high) {
    const mid = (low + high) >> 1
    if (values[mid]! < limit) low = mid + 1
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

type Op = [DiffPart['kind'], string]

// A diff that takes longer gives up on what is left: that part shows as removed and added whole.
const DIFF_BUDGET_MS = 500

/** Word-level diff; whitespace stays attached so the text reads naturally. Myers' O(ND) in
 * linear space (a copy of the search state per step cost a long letter's version gigabytes). */
export function diffWords(before: string, after: string): DiffPart[] {
  const a = before.match(/\s*\S+|\s+/g) ?? []
  const b = after.match(/\s*\S+|\s+/g) ?? []
  const ops: Op[] = []
  diff(a, b, performance.now() + DIFF_BUDGET_MS, ops)
  const parts: DiffPart[] = []
  for (const [kind, text] of ops) {
    const last = parts[parts.length - 1]
    if (last?.kind === kind) last.text += text
    else parts.push({ kind, text })
  }
  return parts
}

/** Appends to `ops` the edit script from `a` to `b`: common ends, then split at the middle snake. */
function diff(a: string[], b: string[], deadline: number, ops: Op[]): void {
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) head++
  let tail = 0
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++
  for (let i = 0; i < head; i++) ops.push(['same', a[i]!])
  const midA = a.slice(head, a.length - tail)
  const midB = b.slice(head, b.length - tail)
  const split = midA.length && midB.length ? middleSnake(midA, midB, deadline) : null
  if (split) {
    diff(midA.slice(0, split[0]), midB.slice(0, split[1]), deadline, ops)
    diff(midA.slice(split[0]), midB.slice(split[1]), deadline, ops)
  } else {
    for (const token of midA) ops.push(['removed', token])
    for (const token of midB) ops.push(['added', token])
  }
  for (let i = a.length - tail; i < a.length; i++) ops.push(['same', a[i]!])
}

/** Where a shortest edit path crosses its middle (Myers 1986, section 4b; the bounds on the
 * diagonals as in diff-match-patch's bisect): null when nothing is in common or time is up.
 * `a` and `b` are non-empty and differ at both ends, so each half has fewer edits: it ends. */
function middleSnake(a: string[], b: string[], deadline: number): [number, number] | null {
  const n = a.length
  const m = b.length
  const maxD = Math.ceil((n + m) / 2)
  const offset = maxD
  const forward = new Int32Array(2 * maxD + 2).fill(-1)
  const reverse = new Int32Array(2 * maxD + 2).fill(-1)
  forward[offset + 1] = 0
  reverse[offset + 1] = 0
  const delta = n - m
  const odd = delta % 2 !== 0 // the forward search meets the reverse one, else the other way
  let kStart1 = 0
  let kEnd1 = 0
  let kStart2 = 0
  let kEnd2 = 0
  for (let d = 0; d < maxD; d++) {
    if ((d & 63) === 0 && performance.now() > deadline) return null
    for (let k1 = -d + kStart1; k1 <= d - kEnd1; k1 += 2) {
      const i1 = offset + k1
      let x1 =
        k1 === -d || (k1 !== d && forward[i1 - 1]! < forward[i1 + 1]!)
          ? forward[i1 + 1]!
          : forward[i1 - 1]! + 1
      let y1 = x1 - k1
      while (x1 < n && y1 < m && a[x1] === b[y1]) (x1++, y1++)
      forward[i1] = x1
      if (x1 > n)
        kEnd1 += 2 // off the right edge
      else if (y1 > m)
        kStart1 += 2 // off the bottom
      else if (odd) {
        const i2 = offset + delta - k1
        if (i2 >= 0 && i2 < forward.length && reverse[i2] !== -1 && x1 >= n - reverse[i2]!) return [x1, y1]
      }
    }
    for (let k2 = -d + kStart2; k2 <= d - kEnd2; k2 += 2) {
      const i2 = offset + k2
      let x2 =
        k2 === -d || (k2 !== d && reverse[i2 - 1]! < reverse[i2 + 1]!)
          ? reverse[i2 + 1]!
          : reverse[i2 - 1]! + 1
      let y2 = x2 - k2
      while (x2 < n && y2 < m && a[n - x2 - 1] === b[m - y2 - 1]) (x2++, y2++)
      reverse[i2] = x2
      if (x2 > n) kEnd2 += 2
      else if (y2 > m) kStart2 += 2
      else if (!odd) {
        const i1 = offset + delta - k2
        if (i1 >= 0 && i1 < forward.length && forward[i1] !== -1) {
          const x1 = forward[i1]!
          if (x1 >= n - x2) return [x1, offset + x1 - i1]
        }
      }
    }
  }
  return null
}
