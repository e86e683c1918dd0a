// Commented text, marked in the letter. The server resolves each thread's anchor to current
// plain-text offsets (GET .../comments); between refreshes the marks follow edits like any
// decoration: local edits by their step maps, remote ones by the diff (see text.ts).

import { Extension, type Editor } from '@tiptap/core'
import type { Node as PMNode } from '@tiptap/pm/model'
import { Plugin, PluginKey, type EditorState } from '@tiptap/pm/state'
import { Mapping } from '@tiptap/pm/transform'
import { Decoration, DecorationSet } from '@tiptap/pm/view'
import { ySyncPluginKey } from '@tiptap/y-tiptap'

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

/** Mark the open threads' text; resolved and detached threads are listed but not marked. */
export function showAnchors(editor: Editor, threads: Thread[]): void {
  if (editor.isDestroyed) return
  const doc = editor.state.doc
  const marks = threads
    .filter((thread) => !thread.resolved && !thread.detached && thread.anchor.to > thread.anchor.from)
    .map((thread) =>
      Decoration.inline(
        positionAt(doc, thread.anchor.from),
        positionAt(doc, thread.anchor.to),
        MARK_ATTRS(thread.thread_id),
        { thread: thread.thread_id, inclusiveEnd: thread.anchor.open_end === true },
      ),
    )
    .filter((mark) => mark.to > mark.from)
  editor.view.dispatch(editor.state.tr.setMeta(key, DecorationSet.create(doc, marks)))
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
