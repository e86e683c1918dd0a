// Every paragraph and heading gets dir="auto": a right-to-left paragraph (Arabic, Hebrew)
// aligns right, each block on its own.
//
// Rendered by the blocks themselves (an attribute TipTap renders, always "auto"), not by
// decorations: a node decoration per block sits in the letter's top-level decoration set, which
// ProseMirror scans whole for each top-level block it redraws, so 1,500 of them cost a long
// letter ~20 ms per keystroke, a colleague's included. The attribute is presentation and must
// not be written into the shared document: its value stays null (y-tiptap writes only non-null
// attributes), it is never read from pasted HTML, and only its rendering says "auto".

import { Extension } from '@tiptap/core'

const BLOCKS = ['paragraph', 'heading']

export const autoDirection = Extension.create({
  name: 'autoDirection',
  addGlobalAttributes() {
    return [
      {
        types: BLOCKS,
        attributes: {
          // Not `dir`: a letter written by an app with TipTap's own TextDirection holds `dir`.
          autoDirection: {
            default: null,
            keepOnSplit: false,
            parseHTML: () => null,
            renderHTML: () => ({ dir: 'auto' }),
          },
        },
      },
    ]
  },
})
