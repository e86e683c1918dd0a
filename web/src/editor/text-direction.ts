// Every paragraph and heading gets dir="auto": a right-to-left paragraph (Arabic, Hebrew)
// aligns right, each block on its own. Decorations, not node attributes: the attribute is
// presentation and must not be written into the shared document. Kept up to date where the
// document changed only: rebuilt whole, they cost a walk of the letter per keystroke.

import { Extension } from '@tiptap/core'
import type { Node as PMNode } from '@tiptap/pm/model'
import { Plugin, PluginKey, type Transaction } from '@tiptap/pm/state'
import { Mapping } from '@tiptap/pm/transform'
import { Decoration, DecorationSet } from '@tiptap/pm/view'
import { ySyncPluginKey } from '@tiptap/y-tiptap'

import { changedRange } from './text'

const BLOCKS = new Set(['paragraph', 'heading'])
const key = new PluginKey<DecorationSet>('textDirection')

export const autoDirection = Extension.create({
  name: 'autoDirection',
  addProseMirrorPlugins() {
    return [
      new Plugin<DecorationSet>({
        key,
        state: {
          init: (_, state) => marked(DecorationSet.empty, state.doc, [[0, state.doc.content.size]]),
          apply: (tr, set, before, after) => {
            if (!tr.docChanged) return set
            if (tr.getMeta(ySyncPluginKey)?.isChangeOrigin !== true)
              return marked(set.map(tr.mapping, tr.doc), tr.doc, changed(tr))
            // Remote edits replace the whole document: diff it, as the comment marks do.
            const change = changedRange(before, after)
            if (!change) return set
            return marked(set.map(new Mapping([change.map]), after.doc), after.doc, [
              [change.from, change.to],
            ])
          },
        },
        props: { decorations: (state) => key.getState(state) },
      }),
    ]
  },
})

/** Where `tr` changed its document, in the document's positions after it. */
function changed(tr: Transaction): [number, number][] {
  const out: [number, number][] = []
  tr.mapping.maps.forEach((map, i) => {
    const rest = tr.mapping.slice(i + 1)
    map.forEach((_from, _to, start, end) => out.push([rest.map(start, -1), rest.map(end, 1)]))
  })
  return out
}

/** `set` with the blocks touching `ranges` marked anew (a split or new block has no mark). */
function marked(set: DecorationSet, doc: PMNode, ranges: [number, number][]): DecorationSet {
  for (const [from, to] of ranges) {
    const lo = Math.max(0, Math.min(from, doc.content.size))
    const hi = Math.max(lo, Math.min(to, doc.content.size))
    const stale = set.find(lo, hi)
    // Read the bounds first: `remove` nulls the entries of its array it found in a nested
    // block (a list item, table cell, quote), and a throw here loses the keystroke.
    const start = Math.min(lo, ...stale.map((d) => d.from))
    const end = Math.max(hi, ...stale.map((d) => d.to))
    set = set.remove(stale)
    const found: Decoration[] = []
    doc.nodesBetween(start, Math.max(end, start + 1), (node, pos) => {
      if (!BLOCKS.has(node.type.name)) return true
      found.push(Decoration.node(pos, pos + node.nodeSize, { dir: 'auto' }))
      return false // no blocks inside a paragraph or heading
    })
    set = set.add(doc, found)
  }
  return set
}
