// Commented text, marked in the letter. The server resolves each thread's anchor to current
// plain-text offsets (GET .../comments); between refreshes the marks follow edits like any
// decoration: local edits by their step maps, remote ones by the diff (see text.ts).

import { Extension, type Editor } from '@tiptap/core'
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
            if (tr.getMeta(ySyncPluginKey)?.isChangeOrigin !== true) return set.map(tr.mapping, tr.doc)
            const change = changedRange(before, after)
            return change ? set.map(new Mapping([change.map]), after.doc) : set
          },
        },
        props: { decorations: (state) => key.getState(state) },
      }),
    ]
  },
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
        { class: 'comment-anchor', 'data-thread': thread.thread_id },
        { thread: thread.thread_id },
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
