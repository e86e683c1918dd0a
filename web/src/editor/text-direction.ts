// Every paragraph and heading gets dir="auto": a right-to-left paragraph (Arabic, Hebrew)
// aligns right, each block on its own. Decorations, not node attributes: the attribute is
// presentation and must not be written into the shared document.

import { Extension } from '@tiptap/core'
import type { Node as PMNode } from '@tiptap/pm/model'
import { Plugin, PluginKey } from '@tiptap/pm/state'
import { Decoration, DecorationSet } from '@tiptap/pm/view'

const BLOCKS = new Set(['paragraph', 'heading'])
const key = new PluginKey<DecorationSet>('textDirection')

export const autoDirection = Extension.create({
  name: 'autoDirection',
  addProseMirrorPlugins() {
    return [
      new Plugin<DecorationSet>({
        key,
        state: {
          init: (_, state) => directions(state.doc),
          apply: (tr, set) => (tr.docChanged ? directions(tr.doc) : set),
        },
        props: { decorations: (state) => key.getState(state) },
      }),
    ]
  },
})

function directions(doc: PMNode): DecorationSet {
  const found: Decoration[] = []
  doc.descendants((node, pos) => {
    if (!BLOCKS.has(node.type.name)) return true
    found.push(Decoration.node(pos, pos + node.nodeSize, { dir: 'auto' }))
    return false // no blocks inside a paragraph or heading
  })
  return DecorationSet.create(doc, found)
}
