// Shows section locks inside the letter: the blocks of a locked section get a bar in the
// holder's colour, and a badge "Locked · Name" sits above the section's first block.

import type { Editor } from '@tiptap/core'
import type { Node as PMNode } from '@tiptap/pm/model'
import { Plugin, PluginKey, type Transaction } from '@tiptap/pm/state'
import { Decoration, DecorationSet } from '@tiptap/pm/view'

import { sectionIds } from './sections'

export interface Lock {
  section: string
  holder: { id: string; name: string; color: string }
  expiresAt: number // ms since the epoch
}

const key = new PluginKey<DecorationSet>('sectionLocks')

/** Registers the decorations; call the returned function after the locks changed. */
export function showLocks(editor: Editor, locks: () => Map<string, Lock>, selfId: string): () => void {
  const build = (doc: PMNode): DecorationSet => decorations(doc, locks(), selfId)
  editor.registerPlugin(
    new Plugin<DecorationSet>({
      key,
      state: {
        init: (_, state) => build(state.doc),
        // Worked out again when the locks or the sections changed, else moved with the edit:
        // rebuilt per transaction, they cost a walk of the letter per keystroke.
        apply: (tr, set) => {
          const changed = tr.getMeta(key) !== undefined
          if (!changed && locks().size === 0) return DecorationSet.empty // the usual letter: nothing per key
          if (changed || (tr.docChanged && touchesSections(tr))) return build(tr.doc)
          if (!tr.docChanged) return set
          const mapped = set.map(tr.mapping, tr.doc)
          // A block replaced whole (a colleague's edit) loses its mark in the mapping: redo them.
          return mapped.find().length === set.find().length ? mapped : build(tr.doc)
        },
      },
      props: { decorations: (state) => key.getState(state) },
    }),
  )
  return () => {
    if (!editor.isDestroyed) editor.view.dispatch(editor.state.tr.setMeta(key, true))
  }
}

/** Whether `tr` may have changed what section a block is in: blocks added or removed at the
 * top, or a heading changed (sections.ts: ids come from headings and top-level indexes). */
function touchesSections(tr: Transaction): boolean {
  if (tr.before.childCount !== tr.doc.childCount) return true
  let heading = false
  const visit = (node: PMNode): boolean => {
    heading ||= node.type.name === 'heading'
    return false // the top-level blocks only
  }
  tr.steps.forEach((step, i) => {
    const after = tr.docs[i + 1] ?? tr.doc
    step.getMap().forEach((oldStart, oldEnd, newStart, newEnd) => {
      tr.docs[i]!.nodesBetween(oldStart, oldEnd, visit)
      after.nodesBetween(newStart, newEnd, visit)
    })
  })
  return heading
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
