// The node and mark types the editor knows. y-tiptap deletes from the shared Yjs document every
// element whose type the editor's schema lacks, and every text run carrying an unknown mark, as
// soon as a browser opens the letter (createNodeFromYElement / createTextNodesFromYText), for
// everyone. Backends post TipTap documents, so the schema covers what TipTap apps commonly
// write besides StarterKit (which brings paragraphs, headings, lists, quotes, code, rules, hard
// breaks, bold, italic, underline, strike, code and links): tables, task lists, images, text
// alignment, highlight, text style (colour, font, size, line height, background) and sub/superscript.

import { Extension, type Extensions } from '@tiptap/core'
import Highlight from '@tiptap/extension-highlight'
import Image from '@tiptap/extension-image'
import { TaskItem, TaskList } from '@tiptap/extension-list'
import Subscript from '@tiptap/extension-subscript'
import Superscript from '@tiptap/extension-superscript'
import { TableKit } from '@tiptap/extension-table'
import TextAlign from '@tiptap/extension-text-align'
import { TextStyleKit } from '@tiptap/extension-text-style'
import StarterKit from '@tiptap/starter-kit'

// A hard break is one "\n" of the letter's plain text, as the server counts offsets
// (gateway/content.py, the snapshotter). ProseMirror's textBetween (text.ts, a comment's quote)
// and textContent read a leaf's text from its spec's `leafText`, which TipTap's HardBreak lacks
// (its `renderText` serves TipTap's getText and the clipboard only) and TipTap passes no such
// field through: `extendNodeSchema` adds it to the node's spec.
const HardBreakText = Extension.create({
  name: 'hardBreakText',
  extendNodeSchema: (node) => (node.name === 'hardBreak' ? { leafText: () => '\n' } : {}),
})

export const documentExtensions: Extensions = [
  // Yjs keeps the undo history (per user); ProseMirror's own would undo other people's edits.
  StarterKit.configure({ undoRedo: false }),
  HardBreakText,
  TableKit.configure({ table: { resizable: false } }),
  TaskList,
  TaskItem.configure({ nested: true }),
  Image,
  TextAlign.configure({ types: ['heading', 'paragraph'] }),
  Highlight.configure({ multicolor: true }), // keeps a posted highlight's colour
  TextStyleKit,
  Subscript,
  Superscript,
]
