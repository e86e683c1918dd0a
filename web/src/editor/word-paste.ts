// Pasting from Microsoft Word (desktop: Windows and Mac, and Outlook, which writes the same
// HTML). Word writes list items as paragraphs styled `mso-list:l0 level1 lfo1` whose number or
// bullet is typed text in a `mso-list:Ignore` span, and puts its fonts, sizes and spacing on
// every run and in a <style> sheet that ProseMirror inlines before parsing. Unchanged, a
// numbered list arrives as paragraphs starting "1." and every run carries a textStyle mark
// (Calibri 11pt...) that then spreads through the shared letter. So Word's HTML is rewritten
// before ProseMirror parses it: list paragraphs become <ol>/<ul><li>, nested by level, one list
// per `lfo` (Word's list instance: "restart numbering" starts a new one), markers removed; of
// the styles only bold, italic, underline/strike, sub/superscript, alignment, a colour other
// than black (and not a link's) and a highlight (as <mark>) are kept. Any other HTML is
// returned untouched. Drops of Word text take the same way. Written here because the npm
// packages for this keep Word's fonts and nest lists as <ol><ul> without an item
// (@intevation/tiptap-extension-office-paste 0.1.2) or are 128 kB of TinyMCE 5's paste code
// (tinymce-word-paste-filter).

import { Extension } from '@tiptap/core'
import { Plugin, PluginKey } from '@tiptap/pm/state'

const WORD =
  /urn:schemas-microsoft-com:office:word|content=["']?Word\.Document|\sclass=["']?Mso|\sstyle=["'][^"']*mso-/i
const LIST_STYLE = /mso-list:\s*l\d+\s+level(\d+)\s+(lfo\d+)/i
const KEPT = new Set([
  'font-weight',
  'font-style',
  'text-decoration',
  'text-decoration-line',
  'vertical-align',
  'text-align',
  'color',
])
const DEFAULT_COLOR = /^(black|windowtext|auto|inherit|#000(000)?|rgb\(0,\s*0,\s*0\))$/i

export const wordPaste = Extension.create({
  name: 'wordPaste',
  addProseMirrorPlugins() {
    return [
      new Plugin({ key: new PluginKey('wordPaste'), props: { transformPastedHTML: normalizeWordHtml } }),
    ]
  },
})

/** Word's clipboard HTML made plain HTML; any other HTML as it is. */
export function normalizeWordHtml(html: string): string {
  if (!WORD.test(html)) return html
  const doc = new DOMParser().parseFromString(html, 'text/html')
  const body = doc.body
  // The <style> sheets would be inlined by ProseMirror; the rest is Word's metadata.
  body.querySelectorAll('style, meta, link, xml, script').forEach((el) => el.remove())
  body.querySelectorAll('img[src^="file:" i]').forEach((el) => el.remove()) // Word's temp folder
  buildLists(body)
  for (const el of [...body.querySelectorAll('*')]) {
    if (el.localName.includes(':'))
      el.replaceWith(...el.childNodes) // <o:p>, <w:sdt>, ...
    else cleanElement(el)
  }
  removeComments(body)
  return body.innerHTML
}

/** Word's list paragraphs replaced by lists: nested by level, a new list per `lfo`. */
function buildLists(body: HTMLElement): void {
  let root: Element | null = null
  let stack: { list: HTMLElement; lfo: string }[] = []
  for (const p of [...body.querySelectorAll('p')]) {
    const match = LIST_STYLE.exec(p.getAttribute('style') ?? '')
    if (!match) continue
    const lfo = match[2]!.toLowerCase()
    if (root === null || p.previousElementSibling !== root) stack = [] // not right after the list
    const level = Math.min(Number(match[1]), stack.length + 1)
    while (stack.length > level) stack.pop()
    if (stack.length === level && stack[level - 1]!.lfo !== lfo) stack.pop() // another list
    const marker = takeMarker(p)
    if (stack.length < level) {
      const list = newList(p.ownerDocument, marker)
      const parent = stack.at(-1)?.list.lastElementChild
      if (parent) parent.append(list)
      else p.before((root = list))
      stack.push({ list, lfo })
    }
    const item = p.ownerDocument.createElement('li')
    stack.at(-1)!.list.append(item)
    item.append(p)
  }
}

/** Removes the paragraph's number or bullet (`<![if !supportLists]>...<![endif]>`) and returns its text. */
function takeMarker(p: HTMLElement): string {
  const walker = p.ownerDocument.createTreeWalker(p, NodeFilter.SHOW_COMMENT)
  let text = ''
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!/^\[if !supportLists\]$/i.test(node.nodeValue ?? '')) continue
    for (let next = node.nextSibling; next && !isEndif(next); next = node.nextSibling) {
      text += next.textContent ?? ''
      next.remove()
    }
    break
  }
  for (const ignored of p.querySelectorAll('[style*="mso-list:ignore" i]')) {
    text ||= ignored.textContent ?? ''
    ignored.remove()
  }
  return text.replace(/[\s\u00a0]+/g, ' ').trim()
}

function isEndif(node: Node): boolean {
  return node.nodeType === Node.COMMENT_NODE && /^\[endif\]$/i.test(node.nodeValue ?? '')
}

/** An <ol> for a number, letter or roman numeral ("1.", "1.2.", "a)", "(iv)"), else a <ul> (Word's
 * bullets are characters of symbol fonts: "·", "o", "§"). */
function newList(doc: Document, marker: string): HTMLElement {
  const numbered = /^\(?(?:\d+\.)*(\d+)[.)]?$/.exec(marker)
  const lettered = /^\(?([a-z]+)[.)]$/i.exec(marker)
  if (!numbered && !lettered) return doc.createElement('ul')
  const list = doc.createElement('ol')
  let start = numbered ? Number(numbered[1]) : 1
  if (lettered) {
    const label = lettered[1]!
    const lower = label === label.toLowerCase()
    const roman = /^[ivxlcdm]+$/i.test(label) && (label.length > 1 || /^i$/i.test(label))
    list.setAttribute('type', roman ? (lower ? 'i' : 'I') : lower ? 'a' : 'A')
    start = roman ? romanValue(label) : label.toLowerCase().charCodeAt(0) - 96
  }
  if (start > 1) list.setAttribute('start', String(start))
  return list
}

function romanValue(roman: string): number {
  const digits: Record<string, number> = { i: 1, v: 5, x: 10, l: 50, c: 100, d: 500, m: 1000 }
  const values = [...roman.toLowerCase()].map((c) => digits[c]!)
  return values.reduce((sum, value, i) => sum + (value < (values[i + 1] ?? 0) ? -value : value), 0)
}

/** Word's styles and classes off the element; the formatting people chose stays. */
function cleanElement(el: Element): void {
  if (/^Mso/.test(el.getAttribute('class') ?? '')) el.removeAttribute('class')
  const style = el.getAttribute('style')
  if (style === null) return
  const inLink = el.closest('a[href]') !== null // the editor draws links its own way
  const kept: string[] = []
  let highlight = ''
  for (const declaration of style.split(';')) {
    const colon = declaration.indexOf(':')
    const name = declaration.slice(0, colon).trim().toLowerCase()
    const value = declaration.slice(colon + 1).trim()
    if (name === 'mso-highlight' && !/^(none|auto)$/i.test(value)) highlight = value
    if (colon < 0 || !KEPT.has(name)) continue
    if (name === 'color' && (inLink || DEFAULT_COLOR.test(value))) continue
    if (name.startsWith('text-decoration') && inLink) continue
    kept.push(`${name}: ${value}`)
  }
  if (kept.length) el.setAttribute('style', kept.join('; '))
  else el.removeAttribute('style')
  if (highlight) {
    const mark = el.ownerDocument.createElement('mark')
    mark.setAttribute('data-color', highlight)
    mark.append(...el.childNodes)
    el.append(mark)
  }
}

function removeComments(body: HTMLElement): void {
  const walker = body.ownerDocument.createTreeWalker(body, NodeFilter.SHOW_COMMENT)
  const comments: Node[] = []
  for (let node = walker.nextNode(); node; node = walker.nextNode()) comments.push(node)
  comments.forEach((node) => node.parentNode?.removeChild(node))
}
