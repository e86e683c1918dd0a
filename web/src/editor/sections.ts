// What a "section" of a letter is, for advisory locks: a heading and the blocks under it (named
// by the heading's text), or, before the first heading, each top-level block on its own
// ("paragraph N", counting top-level blocks from 1). Ids are plain strings the server stores
// in `lock:<letterId>:<section>`: they stay put while people type inside a section, and
// change only when its heading is retitled or blocks are inserted above an unheaded paragraph.

import type { Node as PMNode } from '@tiptap/pm/model'
import type { EditorState } from '@tiptap/pm/state'

const MAX_HEADING_ID = 120 // the server takes up to 200 characters

/** The section id of every top-level block, in order. */
export function sectionIds(doc: PMNode): string[] {
  const ids: string[] = []
  let heading: string | null = null
  doc.forEach((node, _offset, index) => {
    if (node.type.name === 'heading') heading = headingId(node.textContent)
    ids.push(heading ?? `paragraph ${index + 1}`)
  })
  return ids
}

/** The section the caret (the selection's start) is in. */
export function sectionAt(state: EditorState): string {
  const ids = sectionIds(state.doc)
  const index = Math.min(state.selection.$from.index(0), ids.length - 1)
  return ids[Math.max(index, 0)] ?? 'paragraph 1'
}

/** A heading's text as an id; an empty heading names nothing (its blocks count as paragraphs). */
function headingId(text: string): string | null {
  // "/" would end the URL path segment even when percent-encoded (servers decode it first).
  const id = text.replace(/\s+/g, ' ').trim().replace(/\//g, '-').slice(0, MAX_HEADING_ID)
  return id || null
}
