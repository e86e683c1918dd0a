// A backend that drafts into a letter over REST with stock yjs (no WebSocket): it reads the
// letter's state, appends a paragraph to TipTap's fragment in its own Y.Doc, and posts the
// update that made. Usage: node backend.mjs <base url> <letter id> <token> <paragraph>
// Prints {"status", "body"} of the POST.
import * as Y from 'yjs'

const [base, letter, token, value] = process.argv.slice(2)
const headers = { Authorization: `Bearer ${token}` }
const got = await fetch(`${base}/v1/letters/${letter}/state`, { headers })
const doc = new Y.Doc()
Y.applyUpdate(doc, new Uint8Array(await got.arrayBuffer()))
const before = Y.encodeStateVector(doc)
const p = new Y.XmlElement('paragraph')
p.insert(0, [new Y.XmlText(value)])
const fragment = doc.getXmlFragment('default')
fragment.insert(fragment.length, [p])
const posted = await fetch(`${base}/v1/letters/${letter}/updates`, {
  method: 'POST',
  headers: { ...headers, 'Content-Type': 'application/octet-stream' },
  body: Y.encodeStateAsUpdate(doc, before)
})
process.stdout.write(JSON.stringify({ status: posted.status, body: await posted.json() }) + '\n')
