// Shows section locks inside the letter: the blocks of a locked section get a bar in the
// holder's colour, and a badge "Locked · Name" sits above the section's first block.

import type { Editor } from '@tiptap/core'
import type { Node as PMNode } from '@tiptap/pm/model'
import { Plugin, PluginKey } from '@tiptap/pm/state'
import { Decoration, DecorationSet } from '@tiptap/pm/view'

import { sectionIds } from './sections'

export interface Lock {
  section: string
  holder: { id: string; name: string; color: string }
  expiresAt: number // ms since the epoch
}

const key = new PluginKey('sectionLocks')

/** Registers the decorations; call the returned function after the locks changed. */
export function showLocks(editor: Editor, locks: () => Map<string, Lock>, selfId: string): () => void {
  editor.registerPlugin(
    new Plugin({
      key,
      props: { decorations: (state) => decorations(state.doc, locks(), selfId) },
    }),
  )
  // Decorations are recomputed on every view update: a transaction with only a meta is enough.
  return () => {
    if (!editor.isDestroyed) editor.view.dispatch(editor.state.tr.setMeta(key, true))
  }
}

function decorations(doc: PMNode, locks: Map<string, Lock>, selfId: string): DecorationSet {
  if (locks.size === 0) return DecorationSet.empty
  const ids = sectionIds(doc)
  const found: Decoration[] = []
  doc.forEach((node, offset, index) => {
    const section = ids[index]!
    const lock = locks.get(section)
    if (!lock) return
    const style = `--lock-color: ${lock.holder.color}`
    found.push(Decoration.node(offset, offset + node.nodeSize, { class: 'section-locked', style }))
    if (ids[index - 1] === section) return // the badge goes on the section's first block only
    const mine = lock.holder.id === selfId
    const widget = (): HTMLElement => badge(lock, mine)
    found.push(Decoration.widget(offset, widget, { side: -1, key: `${section}:${lock.holder.id}` }))
  })
  return DecorationSet.create(doc, found)
}

function badge(lock: Lock, mine: boolean): HTMLElement {
  const element = document.createElement('span')
  element.className = 'lock-badge'
  element.contentEditable = 'false'
  element.style.setProperty('--lock-color', lock.holder.color)
  element.dataset.section = lock.section
  element.textContent = `Locked · ${lock.holder.name}${mine ? ' (you)' : ''}`
  element.title = `“${lock.section}” is locked by ${lock.holder.name} (advisory: edits are not blocked)`
  return element
}
