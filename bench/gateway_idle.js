// Idle connections for the gateway benchmark: N raw WebSockets, each completing the first
// y-protocol exchange (sync step 1 out, the server's first message in) and then staying idle.
// Usage: node gateway_idle.js plan.json  (plan: {urls: [...], concurrency}); prints JSON lines:
// {"open": N} once all are open, then waits for "close" on stdin.
'use strict'
const { createRequire } = require('node:module')
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')

const need = createRequire(path.join(__dirname, '..', 'tests', 'interop', 'package.json'))
const WebSocket = need('ws')

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const sockets = []
let failed = 0

function open (url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.binaryType = 'arraybuffer'
    ws.once('open', () => ws.send(Uint8Array.from([0, 0, 1, 0])))
    ws.once('message', () => { sockets.push(ws); resolve() })
    ws.once('error', () => { failed++; resolve() })
    ws.on('ping', () => {}) // ws answers pings itself; this keeps the socket referenced
  })
}

async function main () {
  const t0 = Date.now()
  let next = 0
  const worker = async () => { while (next < plan.urls.length) await open(plan.urls[next++]) }
  await Promise.all(Array.from({ length: plan.concurrency }, worker))
  process.stdout.write(JSON.stringify({ open: sockets.length, failed, open_ms: Date.now() - t0 }) + '\n')
  readline.createInterface({ input: process.stdin }).on('line', () => {
    for (const ws of sockets) ws.terminate()
    process.exit(0)
  })
}

main().catch((err) => { console.error(err); process.exit(1) })
