// Load generator for the gateway benchmark: stock Yjs clients (y-websocket's WebsocketProvider)
// in one Node process. Every user pushes {s, n, t} into the Y.Array "bench" of its letter at a
// fixed rate; every peer measures sender-to-peer latency from t and counts each (s, n) it sees,
// so lost and duplicated deliveries are reported too. Usage: node gateway_load.js plan.json
// (written by gateway_bench.py); prints one JSON line of results.
'use strict'
const { createRequire } = require('node:module')
const fs = require('node:fs')
const path = require('node:path')

const need = createRequire(path.join(__dirname, '..', 'tests', 'interop', 'package.json'))
const Y = need('yjs')
const { WebsocketProvider } = need('y-websocket')
const WebSocket = need('ws')

process.setMaxListeners(0)
const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const now = () => performance.timeOrigin + performance.now()
const latencies = []
const seen = new Map() // "receiver:sender:n" -> deliveries (more than 1 is a duplicate)
let sent = 0
let measuring = false

function client (room, params, userIndex) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(plan.url, room, doc, {
    params, WebSocketPolyfill: WebSocket, disableBc: true, maxBackoffTime: 1000
  })
  const items = doc.getArray('bench')
  items.observe((event) => {
    if (event.transaction.local) return
    const t = now()
    for (const d of event.changes.delta) {
      for (const item of d.insert || []) {
        if (!item.m) continue
        latencies.push(t - item.t)
        const key = `${userIndex}:${item.s}:${item.n}`
        seen.set(key, (seen.get(key) || 0) + 1)
      }
    }
  })
  let n = 0
  const send = () => {
    items.push([{ s: userIndex, n: n++, t: now(), m: measuring }])
    if (measuring) sent++
  }
  const synced = new Promise((resolve) => provider.once('sync', resolve))
  return { provider, send, synced, doc }
}

function percentile (sorted, p) {
  if (!sorted.length) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}

async function main () {
  const clients = []
  let userIndex = 0
  for (const { room, users } of plan.rooms) {
    for (const params of users) {
      clients.push({ ...client(room, params, userIndex++), peers: users.length - 1 })
    }
  }
  const t0 = now()
  await Promise.all(clients.map((c) => c.synced))
  const connectMs = now() - t0
  const period = 1000 / plan.rate
  const timers = []
  for (const c of clients) {
    // Spread the users over the period so the load is even, not a burst per tick.
    timers.push(setTimeout(() => timers.push(setInterval(c.send, period)), Math.random() * period))
  }
  await new Promise((resolve) => setTimeout(resolve, plan.warmup_s * 1000))
  measuring = true
  const cpu0 = process.cpuUsage()
  await new Promise((resolve) => setTimeout(resolve, plan.duration_s * 1000))
  measuring = false
  const cpu = process.cpuUsage(cpu0)
  for (const t of timers) { clearTimeout(t); clearInterval(t) }
  await new Promise((resolve) => setTimeout(resolve, plan.drain_s * 1000))
  const expected = sent * (plan.rooms[0].users.length - 1)
  let deliveries = 0
  let duplicated = 0
  for (const count of seen.values()) { deliveries += count; if (count > 1) duplicated += count - 1 }
  latencies.sort((a, b) => a - b)
  const out = {
    connections: clients.length,
    connect_ms: Math.round(connectMs),
    sent,
    expected_deliveries: expected,
    delivered: deliveries,
    delivered_unique: seen.size,
    duplicated,
    p50_ms: percentile(latencies, 0.5),
    p95_ms: percentile(latencies, 0.95),
    p99_ms: percentile(latencies, 0.99),
    max_ms: latencies.length ? latencies[latencies.length - 1] : null,
    updates_per_s: sent / plan.duration_s,
    deliveries_per_s: deliveries / plan.duration_s,
    loadgen_cpu_s: (cpu.user + cpu.system) / 1e6
  }
  process.stdout.write(JSON.stringify(out) + '\n')
  for (const c of clients) c.provider.destroy()
  setTimeout(() => process.exit(0), 200)
}

main().catch((err) => { console.error(err); process.exit(1) })
