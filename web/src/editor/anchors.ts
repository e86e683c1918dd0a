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

/** Mark the open threads' text; resolved and detached threads are listed but not marked. False:
 * some anchor's characters have not reached this page yet, and its mark is by the offsets. */
export function showAnchors(editor: Editor, threads: Thread[]): boolean {
  if (editor.isDestroyed) return true
  const doc = editor.state.doc
  const local = localResolver(editor.state)
  const marks: Decoration[] = []
  let placed = true
  for (const thread of threads) {
    if (thread.resolved || thread.detached) continue
    const found = local?.(thread.anchor)
    if (found === undefined && thread.anchor.start) placed = false
    const range = found === undefined ? offsetRange(doc, thread.anchor) : found
    if (!range || range.to <= range.from) continue // its text is gone here already
    const spec = { thread: thread.thread_id, inclusiveEnd: range.openEnd }
    marks.push(Decoration.inline(range.from, range.to, MARK_ATTRS(thread.thread_id), spec))
  }
  editor.view.dispatch(editor.state.tr.setMeta(key, DecorationSet.create(doc, marks)))
  return placed
}

/** Where a thread's text is in this page's document (null: gone here), for one not marked. */
export function threadRange(editor: Editor, thread: Thread): { from: number; to: number } | null {
  const found = localResolver(editor.state)?.(thread.anchor)
  const range = found === undefined ? offsetRange(editor.state.doc, thread.anchor) : found
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
 * (an ending retyped in place joins the range: an open end). A result of undefined: this page
 * does not know a position's item yet (or the anchor has none); null: its text is gone. */
function localResolver(state: EditorState): ((anchor: Anchor) => Range | null | undefined) | null {
  const binding = bindingOf(state)
  if (!binding) return null
  const starts = new Map<Y.XmlText, number | null>() // each paragraph's text, looked up once
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
    const start = decoded(anchor.start)
    const end = decoded(anchor.end)
    const after = anchor.after ? decoded(anchor.after) : null
    if (!start?.item || !end?.item || !known(binding.doc, start) || !known(binding.doc, end)) return undefined
    if (after && deleted(binding.doc, end.item) && !deleted(binding.doc, start.item)) {
      if (!known(binding.doc, after)) return undefined
      const from = position(start)
      const to = position(after)
      if (from !== null && to !== null) return { from, to, openEnd: true }
    }
    const from = position(start)
    const to = position(end)
    return from === null || to === null || to <= from ? null : { from, to, openEnd: false }
  }
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

function decoded(encoded: string | undefined): Y.RelativePosition | null {
  if (!encoded) return null
  try {
    return Y.decodeRelativePosition(fromBase64(encoded))
  } catch {
    return null // not a position: the offsets serve
  }
}

/** Whether this document has the position's item, or its type (the end of a paragraph). */
function known(doc: Y.Doc, rel: Y.RelativePosition): boolean {
  const id = rel.item ?? rel.type
  if (id) return Y.getState(doc.store, id.client) > id.clock
  return rel.tname !== null
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
