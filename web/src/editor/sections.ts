// What a "section" of a letter is, for advisory locks: a heading and the blocks under it (named
// by the heading's text), or, before the first heading, each top-level block on its own
// ("paragraph N", counting top-level blocks from 1). Ids are plain strings the server stores
// in `lock:<letterId>:<section>`: they stay put while people type inside a section, and
// change only when its heading is retitled or blocks are inserted above an unheaded paragraph.
// Headings with the same text are told apart by occurrence, in document order: the first
// "Damages" is "Damages", the second "Damages (2)" (so they never share a lock).

import type { Node as PMNode } from '@tiptap/pm/model'
import type { EditorState } from '@tiptap/pm/state'

const MAX_HEADING_ID = 120 // the server takes up to 200 characters

/** The section id of every top-level block, in order. */
export function sectionIds(doc: PMNode): string[] {
  const ids: string[] = []
  const used = new Set<string>()
  let heading: string | null = null
  doc.forEach((node, _offset, index) => {
    if (node.type.name === 'heading') {
      heading = headingId(node.textContent)
      if (heading !== null) {
        heading = unique(heading, used)
        used.add(heading)
      }
    }
    ids.push(heading ?? `paragraph ${index + 1}`)
  })
  return ids
}

/** `id`, or for a repeated heading `id (2)`, `id (3)`…, the first one not taken yet. */
function unique(id: string, used: Set<string>): string {
  let candidate = id
  for (let n = 2; used.has(candidate); n++) candidate = `${id} (${n})`
  return candidate
}

/** The section the caret (the selection's start) is in. */
export function sectionAt(state: EditorState): string {
  const ids = sectionIds(state.doc)
  const index = Math.min(state.selection.$from.index(0), ids.length - 1)
  return ids[Math.max(index, 0)] ?? 'paragraph 1'
}

// What the server's name rule (gateway/api/names.py) refuses anywhere in a name and that shows
// nothing (soft hyphens, zero-width spaces, bidi embeddings, tags: a flag keeps its black flag).
const INVISIBLE =
  /[\p{Cc}\u00AD\u034F\u200B\u2028\u2029\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\u{E0000}-\u{E007F}\u{1D173}-\u{1D17A}]/gu
// ... and at either end only: spaces and what shows nothing by itself (a heading cut at
// MAX_HEADING_ID may end in one); variation selectors at the start only (one ends "❤️").
const BLANK =
  '\\s\\u061C\\u1160\\u17B4\\u17B5\\u180E\\u200C-\\u200F\\u2800\\u3164\\uFFA0\\uFFF9-\\uFFFB\\u{1BCA0}-\\u{1BCA3}'
const BLANK_ENDS = new RegExp(`^[${BLANK}\\u180B-\\u180F\\uFE00-\\uFE0F]+|[${BLANK}\\u115F]+$`, 'gu')

/** A heading's text as an id; an empty heading names nothing (its blocks count as paragraphs). */
export function headingId(text: string): string | null {
  // "/" would end the URL path segment even when percent-encoded (servers decode it first).
  // NFC: the server refuses other forms (a heading pasted decomposed would not lock).
  let id = text
    .normalize('NFC')
    .replace(INVISIBLE, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\//g, '-')
    .slice(0, MAX_HEADING_ID)
  if (/[\uD800-\uDBFF]$/.test(id)) id = id.slice(0, -1) // a surrogate pair cut in two
  return id.replace(BLANK_ENDS, '') || null
}
