// web/src/editor/caret-diff.ts (y-tiptap's text diff, told where the caret is) in Node's test
// runner: `node --test tests/web/caret_diff.test.mjs` (test_caret_diff.py runs it). Vite's module
// runner loads the TypeScript as the page gets it, with lib0 from web/node_modules.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const web = fileURLToPath(new URL('../../web/', import.meta.url))
const { runnerImport } = await import(`${web}node_modules/vite/dist/node/index.js`)
const { module: caretDiff } = await runnerImport(`${web}src/editor/caret-diff.ts`, {
  root: web,
  configFile: false,
  logLevel: 'silent',
})
const { atCaret, diffAtCaret, simpleDiff } = caretDiff
const { simpleDiffString: lib0Diff } = await import(`${web}node_modules/lib0/diff.js`)

const apply = (a, { index, remove, insert }) => a.slice(0, index) + insert + a.slice(index + remove)
const isHigh = (unit) => unit !== undefined && /[\uD800-\uDBFF]/.test(unit)
const isLow = (unit) => unit !== undefined && /[\uDC00-\uDFFF]/.test(unit)
const splitsPair = (text, at) => isHigh(text[at - 1]) && isLow(text[at])

/** The diff of `a` to `b` for a caret at `cursor` in `b`, as y-tiptap gets it while typing. */
function typed(a, b, cursor) {
  const stop = diffAtCaret(() => ({ text: b, offset: cursor }))
  try {
    return simpleDiff(a, b)
  } finally {
    stop()
  }
}

test('a character typed before an equal one is the one at the caret', () => {
  // Parker types "x" before Avery's "x": lib0 credits it to the place after hers.
  assert.deepEqual(lib0Diff('ax', 'axx'), { index: 2, remove: 0, insert: 'x' })
  assert.deepEqual(typed('ax', 'axx', 2), { index: 1, remove: 0, insert: 'x' })
  assert.deepEqual(typed('ab', 'aab', 1), { index: 0, remove: 0, insert: 'a' })
  assert.deepEqual(typed('aaaa', 'aaaaa', 1), { index: 0, remove: 0, insert: 'a' })
  // A word typed into a run of its own repetition; Backspace in a run of equal characters.
  assert.deepEqual(typed('abab', 'ababab', 2), { index: 0, remove: 0, insert: 'ab' })
  assert.deepEqual(typed('xaay', 'xay', 1), { index: 1, remove: 1, insert: '' })
})

test("lib0's diff where the caret is elsewhere, or in another text", () => {
  assert.deepEqual(typed('ax', 'axx', 3), lib0Diff('ax', 'axx'))
  const stop = diffAtCaret(() => ({ text: 'other', offset: 0 }))
  try {
    assert.deepEqual(simpleDiff('ax', 'axx'), lib0Diff('ax', 'axx'))
  } finally {
    stop()
  }
  assert.deepEqual(simpleDiff('ax', 'axx'), lib0Diff('ax', 'axx')) // unregistered
  assert.deepEqual(typed('same', 'same', 0), { index: 4, remove: 0, insert: '' })
})

test('surrogate pairs stay whole', () => {
  const smile = '\u{1F600}' // two UTF-16 units
  assert.deepEqual(typed(smile + smile, smile.repeat(3), 2), { index: 0, remove: 0, insert: smile })
  assert.deepEqual(typed(smile + smile, smile.repeat(3), 4), { index: 2, remove: 0, insert: smile })
  // A caret inside a pair (no real caret is) would split one: lib0's diff instead.
  assert.deepEqual(typed(smile + smile, smile.repeat(3), 3), lib0Diff(smile + smile, smile.repeat(3)))
})

test('every edit: valid, no larger than lib0, at the caret when that is as small', () => {
  // Edits in texts of few distinct characters (runs of equal ones), with surrogate pairs.
  const alphabet = ['a', 'b', ' ', '\u{1F600}', '\u{1F601}', '\u00E9']
  let seed = 20261206
  const random = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return (seed >>> 8) % n
  }
  const text = (max) =>
    Array.from({ length: random(max + 1) }, () => alphabet[random(alphabet.length)]).join('')
  for (let run = 0; run < 20_000; run++) {
    const chars = [...text(8)]
    const at = random(chars.length + 1)
    const removed = random(Math.min(3, chars.length - at) + 1)
    const inserted = text(3)
    const a = chars.join('')
    const p = chars.slice(0, at).join('').length
    const k = chars.slice(at, at + removed).join('').length
    const b = a.slice(0, p) + inserted + a.slice(p + k)
    // The caret after what was typed; now and then anywhere (a pair's middle too), as a caret
    // in a text that another edit changed.
    const cursor = random(4) ? p + inserted.length : random(b.length + 1)
    const plain = lib0Diff(a, b)
    const diff = typed(a, b, cursor)
    const seen = JSON.stringify({ a, b, cursor, diff })
    assert.equal(apply(a, diff), b, seen)
    assert.ok(diff.remove + diff.insert.length <= plain.remove + plain.insert.length, seen)
    assert.ok(!splitsPair(a, diff.index) && !splitsPair(a, diff.index + diff.remove), seen)
    assert.ok(!isLow(diff.insert[0]) && !isHigh(diff.insert.at(-1)), seen)
    // The edit as typed is a smallest one: that is the diff, ending at the caret.
    if (
      cursor === p + inserted.length &&
      a !== b &&
      k + inserted.length === plain.remove + plain.insert.length
    )
      assert.deepEqual(diff, { index: p, remove: k, insert: inserted }, seen)
  }
})

test('atCaret keeps a diff that changes nothing', () => {
  assert.deepEqual(atCaret('ab', 'ab', { index: 2, remove: 0, insert: '' }, 0), {
    index: 2,
    remove: 0,
    insert: '',
  })
})
