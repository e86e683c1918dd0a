// Stock Yjs (the browser's library) block removals and formatting, as y-prosemirror makes them,
// for the snapshotter's counts of deleted and formatted characters. Prints JSON: the base state
// and per step its update and the characters (Unicode code points, counted here by JS string
// iteration) it deleted and (re)formatted.
const Y = require('yjs')

const points = (s) => [...s].length
const hex = (u) => Buffer.from(u).toString('hex')
const plain = (text) => text.toDelta().map((op) => op.insert).join('')

function block (tag, text) {
  const element = new Y.XmlElement(tag)
  const t = new Y.XmlText()
  t.insert(0, text)
  element.insert(0, [t])
  return element
}

const doc = new Y.Doc()
const root = doc.getXmlFragment('default')
const list = new Y.XmlElement('bulletList')
const item = new Y.XmlElement('listItem')
item.insert(0, [block('paragraph', 'Item ä😀')])
list.insert(0, [item])
root.insert(0, [
  block('heading', 'Re: claim'),
  block('paragraph', 'Damages total €12,500 😀 payable.'),
  list,
  block('paragraph', 'Jane Smith, Regards')
])
const base = hex(Y.encodeStateAsUpdate(doc))
const steps = []

function step (name, change) {
  const updates = []
  const keep = (u) => updates.push(u)
  const counts = { deleted: 0, formatted: 0 }
  doc.on('update', keep)
  doc.transact(() => change(counts))
  doc.off('update', keep)
  steps.push({ name, update: hex(Y.mergeUpdates(updates)), ...counts })
}

const text = (i) => root.get(i).get(0)
// y-prosemirror removes a block with fragment.delete(index, 1).
step('remove-paragraph', (c) => { c.deleted += points(plain(text(1))); root.delete(1, 1) })
// Now: heading, list, "Jane Smith, Regards". Strike "Jane Smith" (10 UTF-16 units), then clear
// it: yrs reports the clearing up to the text's end, only 10 characters had the mark.
step('strike', (c) => { c.formatted += 10; text(2).format(0, 10, { strike: {} }) })
step('unstrike', (c) => { c.formatted += 10; text(2).format(0, 10, { strike: null }) })
step('bold-again', (c) => { c.formatted += 4; text(2).format(0, 4, { bold: true }) })
step('bold-wider', (c) => { c.formatted += 6; text(2).format(0, 10, { bold: true }) }) // 4 had it
// A block's own attribute (a heading's level): its characters are reformatted.
step('heading-level', (c) => { c.formatted += points('Re: claim'); root.get(0).setAttribute('level', 2) })
// A list item removed inside its list.
step('remove-item', (c) => { c.deleted += points('Item ä😀'); root.get(1).delete(0, 1) })
console.log(JSON.stringify({ base, steps }))
