// Commented text, marked in the letter. Each thread's anchor holds Yjs relative positions
// (`start`, `end`, `after`: gateway/collab/anchors.py): the marks are placed where those are in
// this page's own document, as the server's Resolver reads them, so every page marks the same
// text whatever edits are still on their way (the server's plain-text offsets are of its own
// document: they serve only when this page does not know the positions yet). Between loads the
// marks follow edits like any decoration: local edits by their step maps, remote ones by the
// diff (see text.ts). A new comment's anchor is made the same way, from the selection.

import { Extension, type Editor } from '@tiptap/core'
import type { Node as PMNode } from '@tiptap/pm/model'
import { Plugin, PluginKey, type EditorState } from '@tiptap/pm/state'
import { Mapping } from '@tiptap/pm/transform'
import { Decoration, DecorationSet } from '@tiptap/pm/view'
import {
  absolutePositionToRelativePosition,
  relativePositionToAbsolutePosition,
  ySyncPluginKey,
} from '@tiptap/y-tiptap'
import * as Y from 'yjs'

import type { Thread } from '../api'
import { changedRange, positionAt } from './text'

const key = new PluginKey<DecorationSet>('commentAnchors')

export const commentAnchors = Extension.create({
  name: 'commentAnchors',
  addProseMirrorPlugins() {
    return [
      new Plugin<DecorationSet>({
        key,
        state: {
          init: () => DecorationSet.empty,
          apply: (tr, set, before, after) => {
            const replaced = tr.getMeta(key) as DecorationSet | undefined
            if (replaced) return replaced
            if (!tr.docChanged) return set
            if (tr.getMeta(ySyncPluginKey)?.isChangeOrigin !== true) return mapMarks(set, tr.mapping, tr.doc)
            const change = changedRange(before, after)
            return change ? mapMarks(set, new Mapping([change.map]), after.doc) : set
          },
        },
        props: { decorations: (state) => key.getState(state) },
      }),
    ]
  },
})

/** The marks after an edit. A mark whose last character the edit deleted (its first still
 * there) takes in what is typed in its place from then on, as the server's anchor does (`after`:
 * "March 14" retyped "March 15" stays marked whole); other marks keep an exclusive end. */
function mapMarks(set: DecorationSet, mapping: Mapping, doc: PMNode): DecorationSet {
  const mapped = set.map(mapping, doc)
  const ended = set
    .find(undefined, undefined, (spec) => !spec.inclusiveEnd)
    .filter(
      (mark) => mapping.mapResult(mark.to, -1).deletedBefore && !mapping.mapResult(mark.from, 1).deletedAfter,
    )
  if (ended.length === 0) return mapped
  const stale: Decoration[] = []
  const open: Decoration[] = []
  for (const mark of ended) {
    for (const now of mapped.find(undefined, undefined, (spec) => spec === mark.spec)) {
      const spec = { ...now.spec, inclusiveEnd: true }
      const to = mapping.map(mark.to, 1)
      stale.push(now)
      if (to > now.from) open.push(Decoration.inline(now.from, to, MARK_ATTRS(spec.thread), spec))
    }
  }
  return mapped.remove(stale).add(doc, open)
}

const MARK_ATTRS = (thread: string): Record<string, string> => ({
  class: 'comment-anchor',
  'data-thread': thread,
})

/** Tells, cheaply, whether characters an anchor waited for have arrived since it was marked. */
export type Arrived = () => boolean

/** Mark the open threads' text; resolved and detached threads are listed but not marked. Null:
 * every anchor is placed. Else some anchor names characters that have not reached this page yet
 * and is marked by the offsets for now: mark again once the result says they have arrived (not
 * at every edit: with many such threads that is many decodes per keystroke). Positions that can
 * never resolve (`unanchorable`) are not marked and not waited for. */
export function showAnchors(editor: Editor, threads: Thread[]): Arrived | null {
  if (editor.isDestroyed) return null
  const doc = editor.state.doc
  const binding = bindingOf(editor.state)
  const local = binding && localResolver(binding, doc)
  const awaited = new Map<number, number>() // client -> the least clock an anchor waits for
  let unbound = false // no Yjs document yet: every anchor with positions waits for it
  const marks: Decoration[] = []
  for (const thread of threads) {
    if (thread.resolved || thread.detached) continue
    const found = local ? local(thread.anchor) : OFFSETS
    if (!local && thread.anchor.start) unbound = true
    if (isAwaiting(found)) {
      const { client, clock } = found.awaits
      awaited.set(client, Math.min(clock, awaited.get(client) ?? clock))
    }
    const range = placed(doc, thread.anchor, found)
    if (!range) continue // its text is gone here already, or it can never be placed
    const spec = { thread: thread.thread_id, inclusiveEnd: range.openEnd }
    marks.push(Decoration.inline(range.from, range.to, MARK_ATTRS(thread.thread_id), spec))
  }
  editor.view.dispatch(editor.state.tr.setMeta(key, DecorationSet.create(doc, marks)))
  if (unbound) return () => true
  if (!binding || awaited.size === 0) return null
  const store = binding.doc.store
  return () => [...awaited].some(([client, clock]) => Y.getState(store, client) > clock)
}

/** Whether the anchor's positions can never be placed in any document: not Yjs relative
 * positions on characters (only a buggy or hostile client makes such). Its thread is shown as
 * detached, as one whose text was deleted. An anchor without positions (offsets only) is not. */
export function unanchorable(anchor: Anchor): boolean {
  if (!anchor.start && !anchor.end) return false
  return !decoded(anchor.start)?.item || !decoded(anchor.end)?.item
}

/** Where a thread's text is in this page's document (null: gone here), for one not marked. */
export function threadRange(editor: Editor, thread: Thread): { from: number; to: number } | null {
  const binding = bindingOf(editor.state)
  const found = binding ? localResolver(binding, editor.state.doc)(thread.anchor) : OFFSETS
  return placed(editor.state.doc, thread.anchor, found)
}

/** Where a thread is marked: at its positions, or at the server's offsets while those serve;
 * null: nowhere (its text is gone, or its positions can never be placed). */
function placed(doc: PMNode, anchor: Anchor, found: Found): Range | null {
  if (found === NEVER) return null
  const range = found === OFFSETS || isAwaiting(found) ? offsetRange(doc, anchor) : found
  return range && range.to > range.from ? range : null
}

/** The anchor of the text of [from, to) as Yjs relative positions in this page's document
 * (base64 of `Y.encodeRelativePosition`), as the server makes them from offsets: `start` on the
 * first character (assoc 0), `end` on the last (assoc -1), `after` on the one after it in its
 * paragraph (assoc 0), or that paragraph's end. The server finds them in its own document, where
 * edits this page has not seen yet may have moved the text. Null: no text in the range, or no
 * Yjs document (send offsets then). */
export function selectionAnchor(
  state: EditorState,
  from: number,
  to: number,
): { start: string; end: string; after: string } | null {
  const binding = bindingOf(state)
  if (!binding) return null
  // Line breaks and other nodes at the ends hold no character: the first and last ones in text.
  let first = -1
  let last = -1
  state.doc.nodesBetween(from, to, (node, pos) => {
    if (!node.isText) return true
    const start = Math.max(from, pos)
    const end = Math.min(to, pos + node.nodeSize)
    if (end > start) {
      if (first < 0) first = start
      last = end - 1
    }
    return false
  })
  if (first < 0) return null
  const head = characterAt(binding, first)
  const tail = characterAt(binding, last)
  if (!head || !tail) return null
  const encode = (position: Y.RelativePosition): string => toBase64(Y.encodeRelativePosition(position))
  return {
    start: encode(Y.createRelativePositionFromTypeIndex(head.type, head.index, 0)),
    end: encode(Y.createRelativePositionFromTypeIndex(tail.type, tail.index + 1, -1)),
    after: encode(Y.createRelativePositionFromTypeIndex(tail.type, tail.index + 1, 0)),
  }
}

/** Where a thread's text is now: its mark, which has followed every edit since the last load. */
export function anchorRange(editor: Editor, threadId: string): { from: number; to: number } | null {
  const marks = key.getState(editor.state)?.find(undefined, undefined, (spec) => spec.thread === threadId)
  if (!marks?.length) return null
  return { from: Math.min(...marks.map((m) => m.from)), to: Math.max(...marks.map((m) => m.to)) }
}

/** The threads whose marks `before` had and `after` lost (their whole text was deleted). */
export function lostAnchors(before: EditorState, after: EditorState): string[] {
  const threads = (state: EditorState): Set<unknown> =>
    new Set(
      key
        .getState(state)
        ?.find()
        .map((mark) => mark.spec.thread),
    )
  const now = threads(after)
  return [...threads(before)].filter((thread) => !now.has(thread)).map(String)
}

type Anchor = Thread['anchor']
interface Range {
  from: number
  to: number
  openEnd: boolean
}
/** What an anchor's positions say in this page's document: a range, its text gone (null), the
 * server's offsets serve (no positions, or no Yjs document yet), an item that has not arrived
 * (offsets until it does), or positions that never resolve. */
type Found = Range | null | typeof OFFSETS | Awaiting | typeof NEVER
interface Awaiting {
  awaits: Y.ID
}
const OFFSETS = 'offsets'
const NEVER = 'never'

function isAwaiting(found: Found): found is Awaiting {
  return typeof found === 'object' && found !== null && 'awaits' in found
}
/** y-tiptap's binding of the letter's Yjs fragment to the editor (its sync plugin's state). */
export interface Binding {
  doc: Y.Doc
  type: Y.XmlFragment
  mapping: Parameters<typeof relativePositionToAbsolutePosition>[3]
}

export function bindingOf(state: EditorState): Binding | null {
  const sync = ySyncPluginKey.getState(state) as { binding?: Binding | null } | undefined
  return sync?.binding ?? null
}

/** The server's offsets in this document: right only where it has the same text before them. */
function offsetRange(doc: PMNode, anchor: Anchor): Range | null {
  if (!(anchor.to > anchor.from)) return null // detached: null offsets
  const openEnd = anchor.open_end === true
  return { from: positionAt(doc, anchor.from), to: positionAt(doc, anchor.to), openEnd }
}

/** Resolves anchors in the page's Yjs document as gateway/collab/anchors.py `Resolver` does:
 * from `start` to `end`, or to `after` once the last character is deleted and the first is not
 * (an ending retyped in place joins the range: an open end). A position whose client's clock
 * this document has past its item's is final: the item is here (or garbage-collected, its text
 * gone); only one beyond that clock may still arrive. */
function localResolver(binding: Binding, doc: PMNode): (anchor: Anchor) => Found {
  const starts = new Map<Y.XmlText, number | null>() // each paragraph's text, looked up once
  let copied: Copied | undefined // the restored paragraphs (`reparented`), found once
  const position = (rel: Y.RelativePosition): number | null => {
    // Not following redone items: the server's positions stay on the items they name.
    const at = Y.createAbsolutePositionFromRelativePosition(rel, binding.doc, false)
    if (!at || !(at.type instanceof Y.XmlText)) return null
    let base = starts.get(at.type)
    if (base === undefined) {
      base = inDocument(binding, at.type) ? textStart(binding, at.type) : null
      starts.set(at.type, base)
    }
    return base === null ? null : base + at.index
  }
  return (anchor) => {
    if (!anchor.start && !anchor.end) return OFFSETS
    const first = decoded(anchor.start)
    const last = decoded(anchor.end)
    if (!first?.item || !last?.item) return NEVER
    const missing = absent(binding.doc, first) ?? absent(binding.doc, last)
    if (missing) return { awaits: missing }
    const after = anchor.after ? decoded(anchor.after) : null
    const start = restored(binding.doc, first, position)
    const end = restored(binding.doc, last, position)
    if (start !== first || end !== last) {
      // Text typed just before a character has it as right origin, as a copy has: taken for
      // restored only when it reads as the quote (as the server's Resolver.resolve).
      const found = range(start, end, after)
      if (isAwaiting(found)) return found
      if (found && quoteMatches(textOf(doc, found), anchor.quote)) return found
      // Copies lie among its deleted characters (an edited text's undo, several items): their
      // positions would span copies, not its text. Detached (as the server's Resolver.resolve).
      if (deleted(binding.doc, first.item) && deleted(binding.doc, last.item)) return null
    }
    if (deleted(binding.doc, first.item) && deleted(binding.doc, last.item) && gone(first, last)) {
      // Both in paragraphs that are gone (deleted whole: on other pages their content is
      // garbage-collected): the quote in a restored paragraph (as the server's Resolver).
      const found = reparented(anchor.quote)
      if (found) return found
    }
    return range(first, last, after)
  }

  /** Whether neither end's character is in a paragraph of the letter. */
  function gone(first: Y.RelativePosition, last: Y.RelativePosition): boolean {
    return position(first) === null && position(last) === null
  }

  /** As gateway/collab/anchors.py `Resolver._reparented`: undoing the deletion of whole
   * paragraphs puts back copies of their elements, holding copies of their text. Only a whole
   * quote (not cut at QUOTE_MAX) within one paragraph, found once in them: else which text it
   * was is not known (detached). */
  function reparented(quote: string): Range | null {
    if (!quote || Array.from(quote).length >= QUOTE_MAX || quote.includes('\n')) return null
    copied ??= copiedTexts(binding, doc, position)
    let found: number | null = null
    for (let at = copied.text.indexOf(quote); at >= 0; at = copied.text.indexOf(quote, at + 1)) {
      if (found !== null) return null
      let k = 0
      while (k + 1 < copied.starts.length && copied.starts[k + 1] <= at) k++
      found = copied.bases[k] + at - copied.starts[k]
    }
    return found === null ? null : { from: found, to: found + quote.length, openEnd: false }
  }

  function range(
    start: Y.RelativePosition,
    end: Y.RelativePosition,
    after: Y.RelativePosition | null,
  ): Range | Awaiting | null {
    if (after && deleted(binding.doc, end.item!) && !deleted(binding.doc, start.item!)) {
      const later = absent(binding.doc, after)
      if (later) return { awaits: later }
      const from = position(start)
      const to = position(after)
      if (from !== null && to !== null) return { from, to, openEnd: true }
    }
    const from = position(start)
    const to = position(end)
    return from === null || to === null || to <= from ? null : { from, to, openEnd: false }
  }
}

/** The paragraph texts in an element UndoManager restored (in it, or in an ancestor of it, whose
 * right origin is a deleted item, as a copy's is the element it copies: anchors.py
 * `Resolver._copied`): their texts joined by line breaks, which no quote searched for holds;
 * where each starts in that and in the document. */
interface Copied {
  text: string
  starts: number[]
  bases: number[]
}

function copiedTexts(binding: Binding, doc: PMNode, at: (rel: Y.RelativePosition) => number | null): Copied {
  const copied = { text: '', starts: [] as number[], bases: [] as number[] }
  const isCopy = (item: Y.Item | null): boolean =>
    item?.rightOrigin != null && deleted(binding.doc, item.rightOrigin)
  const walk = (type: Y.XmlFragment | Y.XmlElement, inCopy: boolean): void => {
    for (const child of type.toArray()) {
      const copy = inCopy || isCopy(child._item)
      if (child instanceof Y.XmlElement) walk(child, copy)
      else if (child instanceof Y.XmlText && copy) {
        const base = at(Y.createRelativePositionFromTypeIndex(child, 0))
        if (base === null) continue
        if (copied.starts.length) copied.text += '\n'
        copied.starts.push(copied.text.length)
        copied.bases.push(base)
        copied.text += doc.textBetween(base, base + child.length, '\n')
      }
    }
  }
  walk(binding.type, false)
  return copied
}

/** What `Anchor.quote` holds at most (schemas/events.py), in code points. */
const QUOTE_MAX = 10_000

/** The plain text of a range as the server counts it (text.ts: one line per block). */
function textOf(doc: PMNode, range: Range): string {
  return doc.textBetween(range.from, range.to, '\n')
}

/** As gateway/collab/anchors.py `quote_matches`: the range's text begins with the quote's first
 * character, holds its characters in order (text typed into the restored text since stays in it)
 * and, when the quote is not cut at QUOTE_MAX, ends with its last one. An empty quote matches. */
export function quoteMatches(text: string, quote: string): boolean {
  const want = Array.from(quote)
  if (!want.length) return true
  const have = Array.from(text)
  if (!have.length || have[0] !== want[0]) return false
  if (want.length < QUOTE_MAX && have[have.length - 1] !== want[want.length - 1]) return false
  let i = 0
  for (const c of have) if (i < want.length && c === want[i]) i++
  return i === want.length
}

/** Copies of copies followed (undo, redo, undo again...): as gateway/collab/anchors.py. */
const RESTORE_HOPS = 16

/** As gateway/collab/anchors.py `Resolver._restored`: a position on a deleted character moves to
 * the copy Yjs' UndoManager put back in its place (Yjs follows `item.redone`, which only the page
 * that undid has); unchanged if its character is not deleted or not restored. */
function restored(
  doc: Y.Doc,
  rel: Y.RelativePosition,
  at: (rel: Y.RelativePosition) => number | null,
): Y.RelativePosition {
  let id = rel.item
  for (let hop = 0; id && hop < RESTORE_HOPS; hop++) {
    if (!deleted(doc, id)) return hop ? Y.createRelativePositionFromJSON({ item: id, assoc: rel.assoc }) : rel
    id = copyOf(doc, id, at)
  }
  return rel
}

/** As gateway/collab/anchors.py `Resolver._copy_of`: UndoManager inserts a copy of each deleted
 * item T just before it, T's first character its right origin. Of the runs (an item, later split)
 * whose right origin is on T and that cover `id`, one whose end, T's first character and `id` are
 * at one place (only deleted text between); the latest T first. Only this paragraph's items are
 * looked at: a copy elsewhere is never at the same place. */
function copyOf(doc: Y.Doc, id: Y.ID, at: (rel: Y.RelativePosition) => number | null): Y.ID | null {
  const store = doc.store
  const on = (client: number, clock: number, assoc: number): number | null =>
    at(Y.createRelativePositionFromJSON({ item: { client, clock }, assoc }))
  const here = on(id.client, id.clock, 0)
  const item = Y.getItem(store, id)
  if (here === null || !(item instanceof Y.Item)) return null
  let best: number[] | null = null // [t, client, r0, length] of the one chosen so far
  for (let piece = (item.parent as Y.AbstractType<any>)._start; piece; piece = piece.right) {
    const origin = piece.rightOrigin
    if (!origin || origin.client !== id.client || origin.clock > id.clock) continue
    const { client, r0, length } = runOf(store, piece, origin)
    const run = [origin.clock, client, r0, length]
    if (id.clock - origin.clock >= length || (best && !greater(run, best))) continue
    if (on(id.client, origin.clock, 0) === here && on(client, r0 + length - 1, -1) === here) best = run
  }
  return best && Y.createID(best[1], best[2] + id.clock - best[0])
}

function greater(a: number[], b: number[]): boolean {
  const i = a.findIndex((value, j) => value !== b[j])
  return i >= 0 && a[i] > b[i]
}

/** The clocks of the item `piece` was split from: its client's consecutive pieces with the same
 * right origin (as the server joins the structs of its encoding). */
function runOf(
  store: Y.Doc['store'],
  piece: Y.Item,
  origin: Y.ID,
): { client: number; r0: number; length: number } {
  const client = piece.id.client
  const same = (clock: number): Y.Item | null => {
    if (clock < 0 || Y.getState(store, client) <= clock) return null
    const next = Y.getItem(store, Y.createID(client, clock))
    return next instanceof Y.Item && next.rightOrigin !== null && Y.compareIDs(next.rightOrigin, origin)
      ? next
      : null
  }
  let r0 = piece.id.clock
  for (let prev = same(r0 - 1); prev; prev = same(r0 - 1)) r0 = prev.id.clock
  let end = piece.id.clock + piece.length
  for (let next = same(end); next; next = same(end)) end += next.length
  return { client, r0, length: end - r0 }
}

/** The paragraph text and index in it of the character after document position `pos`. */
function characterAt(binding: Binding, pos: number): { type: Y.XmlText; index: number } | null {
  // y-tiptap's position after the character, on it (assoc -1): its item, whatever the nodes around.
  const rel = absolutePositionToRelativePosition(pos + 1, binding.type, binding.mapping) as Y.RelativePosition
  const at = Y.createAbsolutePositionFromRelativePosition(rel, binding.doc)
  if (!at || !(at.type instanceof Y.XmlText) || at.index < 1) return null
  return { type: at.type, index: at.index - 1 }
}

/** The document position where a paragraph's text starts. By a position on the type itself, not
 * on an item: y-tiptap takes an item's position at the letter's very start for a misresolved one. */
function textStart(binding: Binding, type: Y.XmlText): number | null {
  const rel = Y.createRelativePositionFromTypeIndex(type, 0, -1)
  return relativePositionToAbsolutePosition(binding.doc, binding.type, rel, binding.mapping)
}

/** Whether the type is still in the letter (none of its ancestors deleted). */
function inDocument(binding: Binding, type: Y.XmlText): boolean {
  let at: Y.AbstractType<any> = type
  while (at._item) {
    if (at._item.deleted) return false
    at = at._item.parent as Y.AbstractType<any>
  }
  return at === binding.type
}

/** A relative position; null: none, or bytes that are not one (Yjs reads an unknown kind as a
 * position naming nothing, which it cannot place). */
function decoded(encoded: string | undefined): Y.RelativePosition | null {
  if (!encoded) return null
  try {
    const rel = Y.decodeRelativePosition(fromBase64(encoded))
    return rel.item || rel.type || rel.tname !== null ? rel : null
  } catch {
    return null
  }
}

/** The id of the position's item, or of its type (the end of a paragraph), if this document
 * has not received it yet; null if it has (or the position names a root type). */
function absent(doc: Y.Doc, rel: Y.RelativePosition): Y.ID | null {
  const id = rel.item ?? rel.type
  return id && Y.getState(doc.store, id.client) <= id.clock ? id : null
}

function deleted(doc: Y.Doc, id: Y.ID): boolean {
  return Y.getState(doc.store, id.client) > id.clock && Y.getItem(doc.store, id).deleted
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
}
