// Stock Yjs (the browser's library) edits of a letter, for the snapshotter's edit counts.
// Prints JSON: per scenario the base state and per step its update, the text after it, and the
// characters (Unicode code points, counted here by JS string iteration) it inserted/deleted.
// Yjs indexes strings in UTF-16 units: an astral character ("😀") is two.
const Y = require('yjs')

const points = (s) => [...s].length
const hex = (u) => Buffer.from(u).toString('hex')

function paragraph (text) {
  const p = new Y.XmlElement('paragraph')
  const t = new Y.XmlText()
  t.insert(0, text)
  p.insert(0, [t])
  return p
}

// Plain text of a TipTap-shaped fragment: blocks on lines (lists nest blocks).
function plain (node) {
  if (node instanceof Y.XmlText) return node.toDelta().map((op) => op.insert).join('')
  const kids = node.toArray()
  if (kids.every((k) => k instanceof Y.XmlText)) return kids.map(plain).join('')
  return kids.map(plain).join('\n')
}

function scenario (body, setup, steps) {
  const doc = new Y.Doc()
  const root = body === 'text' ? doc.getText('default') : doc.getXmlFragment('default')
  setup(root, doc)
  const out = { body, base: hex(Y.encodeStateAsUpdate(doc)), steps: [] }
  for (const step of steps) {
    const updates = []
    const keep = (u) => updates.push(u)
    doc.on('update', keep)
    const counts = { inserted: 0, deleted: 0 }
    doc.transact(() => step(root, counts))
    doc.off('update', keep)
    const text = body === 'text' ? root.toString() : plain(root)
    out.steps.push({ update: hex(Y.mergeUpdates(updates)), text, ...counts })
  }
  return out
}

// A deletion of `length` UTF-16 units at `index`, counted in characters.
function del (text, index, length, counts) {
  const chars = text instanceof Y.XmlText ? plain(text) : text.toString() // no format tags
  counts.deleted += points(chars.slice(index, index + length))
  text.delete(index, length)
}

function ins (text, index, value, counts) {
  counts.inserted += points(value)
  text.insert(index, value)
}

const para = (root, i) => root.get(i).get(0) // a paragraph's Y.XmlText

const out = [
  // TipTap: paragraphs of Y.XmlText. "café€😀 ok": é is 2 UTF-8 bytes, € 3, 😀 4 (2 UTF-16 units).
  scenario('xml', (root) => root.insert(0, [paragraph('café€😀 ok'), paragraph('zweite 😀 Zeile')]), [
    (root, c) => del(para(root, 0), 3, 1, c), // "é"
    (root, c) => del(para(root, 0), 3, 1, c), // "€"
    (root, c) => del(para(root, 0), 3, 2, c), // "😀"
    (root, c) => ins(para(root, 0), 3, 'é€😀', c),
    (root, c) => del(para(root, 0), 3, 4, c), // "é€😀": 3 characters, 4 units, 9 bytes
    (root, c) => { del(para(root, 1), 7, 2, c); ins(para(root, 1), 7, '𝄞€', c) },
    (root, c) => { ins(para(root, 0), 0, '😀😀', c); del(para(root, 0), 4, 3, c) }, // after the insert
    // Bold formatting around an astral character, then a deletion across the mark's ends.
    (root, c) => para(root, 1).format(5, 5, { bold: true }),
    (root, c) => del(para(root, 1), 4, 5, c),
    // A paragraph inserted before the edited one in the same transaction: its path shifts.
    (root, c) => {
      root.insert(0, [paragraph('neu 😀')])
      c.inserted += points('neu 😀')
      del(para(root, 2), 0, 2, c)
    },
    // A paragraph removed (y-prosemirror's block removal): its characters are deleted.
    (root, c) => { c.deleted += points(plain(root.get(0))); root.delete(0, 1) }
  ]),
  // A list: bulletList > listItem > paragraph > Y.XmlText, edited inside.
  scenario('xml', (root) => {
    const list = new Y.XmlElement('bulletList')
    const item = new Y.XmlElement('listItem')
    item.insert(0, [paragraph('ä😀ö')])
    list.insert(0, [item])
    root.insert(0, [paragraph('intro'), list])
  }, [
    (root, c) => del(root.get(1).get(0).get(0).get(0), 1, 2, c),
    (root, c) => {
      const item = new Y.XmlElement('listItem')
      item.insert(0, [paragraph('€€')])
      root.get(1).insert(1, [item])
      c.inserted += 2
      del(root.get(1).get(0).get(0).get(0), 0, 1, c)
    },
    (root, c) => del(root.get(1).get(1).get(0).get(0), 0, 2, c)
  ]),
  // A plain Y.Text body: paragraphs are lines.
  scenario('text', (root) => root.insert(0, 'eins\ncafé€😀 ok\ndrei'), [
    (root, c) => del(root, 8, 1, c), // "é"
    (root, c) => del(root, 8, 1, c), // "€"
    (root, c) => del(root, 8, 2, c), // "😀"
    (root, c) => ins(root, 8, 'é€😀', c),
    (root, c) => del(root, 8, 4, c),
    (root, c) => ins(root, 12, '😀 ', c), // line 2 ("drei"), after the edits
    (root, c) => { ins(root, 0, '𝄞', c); del(root, 7, 3, c) }
  ])
]
console.log(JSON.stringify(out))
