// Highlights text that a collaborator just changed, briefly, in that collaborator's colour.
//
// y-tiptap applies a remote Yjs change as one ProseMirror transaction that replaces the whole
// document, so its step maps say nothing useful; the changed range is found by diffing the old
// and new documents instead (which also maps the highlights already shown). The author is whoever's Yjs clock advanced in that transaction.

import { Extension } from '@tiptap/core'
import { Plugin, PluginKey, type EditorState, type Transaction } from '@tiptap/pm/state'
import { Mapping } from '@tiptap/pm/transform'
import { Decoration, DecorationSet } from '@tiptap/pm/view'
import { ySyncPluginKey } from '@tiptap/y-tiptap'
import type { WebsocketProvider } from 'y-websocket'
import type * as Y from 'yjs'

import { changedRange, type Change } from './text'
import type { Author, Writers } from './writers'

const HIGHLIGHT_MS = 3000
const key = new PluginKey<DecorationSet>('recentEdits')

export function recentEdits(provider: WebsocketProvider, writers: Writers): Extension {
  let author: Author | null = null
  provider.doc.on('beforeObserverCalls', (tr: Y.Transaction) => {
    author = tr.local ? null : authorOf(provider, writers, tr)
  })
  return Extension.create({
    name: 'recentEdits',
    addProseMirrorPlugins() {
      return [
        new Plugin<DecorationSet>({
          key,
          state: {
            init: () => DecorationSet.empty,
            apply: (tr, set, before, after) => {
              const isRemote = tr.getMeta(ySyncPluginKey)?.isChangeOrigin === true
              if (!isRemote || !tr.docChanged) return expire(set.map(tr.mapping, tr.doc), tr)
              const change = changedRange(before, after)
              if (change === null) return set
              const kept = set.map(new Mapping([change.map]), after.doc)
              // Not while (re)syncing: the catch-up after loading is not "someone just typed".
              if (!provider.synced || author === null || change.to <= change.from) return kept
              return highlight(kept, after, change, author)
            },
          },
          props: { decorations: (state) => key.getState(state) },
          view: (view) => {
            const timer = setInterval(() => {
              const set = key.getState(view.state)
              if (set && set.find().length > 0) view.dispatch(view.state.tr.setMeta(key, Date.now()))
            }, 1000)
            return { destroy: () => clearInterval(timer) }
          },
        }),
      ]
    },
  })
}

/** From the writer's awareness state; a REST writer has none, the gateway named it (writers.ts). */
function authorOf(provider: WebsocketProvider, writers: Writers, tr: Y.Transaction): Author | null {
  for (const [client, clock] of tr.afterState) {
    if ((tr.beforeState.get(client) ?? 0) >= clock) continue
    const user = provider.awareness.getStates().get(client)?.user as Partial<Author> | undefined
    const writer = user?.name === undefined ? writers.get(client) : undefined
    if (writer !== undefined) return writer
    return { name: user?.name ?? 'A collaborator', color: user?.color ?? '#888888' }
  }
  return null // only deletions: nothing left to highlight
}

function expire(set: DecorationSet, tr: Transaction): DecorationSet {
  const now = tr.getMeta(key) as number | undefined
  if (now === undefined) return set
  return set.remove(set.find(undefined, undefined, (spec) => (spec.until as number) <= now))
}

/** One highlight per burst: a new edit absorbs the same author's touching highlights. */
function highlight(set: DecorationSet, after: EditorState, change: Change, author: Author): DecorationSet {
  const touching = set.find(change.from, change.to, (spec) => spec.author === author.name)
  const from = Math.min(change.from, ...touching.map((d) => d.from))
  const to = Math.max(change.to, ...touching.map((d) => d.to))
  const decoration = Decoration.inline(
    from,
    to,
    { class: 'recent-edit', style: `--edit-color: ${author.color}`, title: `Edited by ${author.name}` },
    { until: Date.now() + HIGHLIGHT_MS, author: author.name },
  )
  return set.remove(touching).add(after.doc, [decoration])
}
