// Load generator for the gateway benchmark: stock Yjs clients (y-websocket's WebsocketProvider)
// in one Node process. Each user overwrites its own key of the Y.Map "bench" with {n, t, m} at a
// fixed rate; every peer measures sender-to-peer latency from t when the key changes.
// Usage: node gateway_load.js plan.json (written by gateway_bench.py); prints one JSON line.
// The bench may split the letters over several of these processes (`--procs`): each prints
// {"phase": "synced"} once its clients have synced and starts its schedule when the bench writes
// "go" to its stdin, so all of them measure the same window; the bench merges their latencies.
//
// Why a Y.Map key per user and not a growing Y.Array: Yjs computes an array event's `changes`
// and a push at the end by walking the array, so with ~1,000 items per letter the generator
// spent a third of its CPU there and could not reach the planned rate. A key per user keeps
// every update and every observer call O(1), and the document's size constant.
//
// Accounting: a receiver normally sees every n of a sender in turn. A server may merge a slow
// client's queued updates into one message, which then shows only the last n: those skipped
// ones are counted as `coalesced` (no latency sample of their own). At the end every receiver
// must hold each sender's last n (checked from the documents, not from events): `diverged`
// counts the (receiver, sender) pairs that do not, i.e. updates really lost. Yjs itself drops
// an update it already has, so duplicates cannot be observed at this level.
//
// Lean mode (`plan.lean`, bench option `--lean`): the same load at a fraction of the generator's
// CPU, for server-bound figures. A stock client applies every one of the 22,500 deliveries/s at
// 50 x 10 to its Y.Doc, which costs the generator a whole core of this 2-core machine, so its own
// queueing sets the latencies. A lean client is a plain `ws` socket: it sends real Yjs updates
// (each user's own Y.Doc, which only ever holds its own key: a Y.Map set refers to nothing but
// the key's previous value, so the update is valid in every peer's document) and reads the
// deliveries without applying them, by finding the value's marker in the frame's bytes. It also
// sees every n it receives, so it counts duplicates, which a stock client cannot, and its own
// update's echo (`acks`: the gateway's acknowledgement, sent once the update is durable).
'use strict'
const { createRequire } = require('node:module')
const fs = require('node:fs')
const path = require('node:path')
const { pathToFileURL } = require('node:url')
const { monitorEventLoopDelay } = require('node:perf_hooks')

const modules = path.join(__dirname, '..', 'tests', 'interop', 'node_modules')
const WebSocket = createRequire(path.join(modules, '..', 'package.json'))('ws')
// The ESM builds of yjs/y-websocket (what a browser bundle uses): the CommonJS build reaches
// every lib0 function through a namespace getter, ~6% of the generator's CPU in a profile.
let Y, WebsocketProvider
async function loadYjs () {
  const esm = (rel) => import(pathToFileURL(path.join(modules, rel)).href)
  Y = await esm('yjs/dist/yjs.mjs')
  ;({ WebsocketProvider } = await esm('y-websocket/src/y-websocket.js'))
}

process.setMaxListeners(0)
const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
// Milliseconds of CLOCK_MONOTONIC (process.hrtime), nanosecond resolution and the same clock in
// every process of the machine: a sender and its peers may live in different generators.
const now = () => Number(process.hrtime.bigint()) / 1e6
const stats = { latencies: [], acks: [], observed: 0, coalesced: 0, duplicated: 0, sent: 0, sendLateMs: [] }
let measuring = false

// One delivery of sender's update number n (sent at sentAt, measured or warm-up) seen at t. A
// jump in n means several updates arrived merged (coalesced); a step back, one seen twice.
function record (lastSeen, sender, n, sentAt, measured, t) {
  const gap = n - lastSeen.get(sender) - 1
  if (gap < 0) { stats.duplicated++; return }
  lastSeen.set(sender, n)
  if (!measured) return
  stats.latencies.push(t - sentAt)
  stats.observed++
  if (gap > 0) stats.coalesced += gap
}

// What the schedule and the divergence check use of a client, stock or lean: `write(n)` sets the
// user's key to update number n.
function handle (key, write, synced, lastOf, destroy) {
  let n = 0
  const send = () => {
    write(n++)
    if (measuring) stats.sent++
  }
  return { send, synced, key, sentN: () => n - 1, lastOf, destroy }
}

function client (room, params, userIndex, roomUsers) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(plan.url, room, doc, {
    params, WebSocketPolyfill: WebSocket, disableBc: true, maxBackoffTime: 1000
  })
  const map = doc.getMap('bench')
  const key = String(userIndex)
  const lastSeen = new Map(roomUsers.map((u) => [String(u), -1])) // sender key -> last n seen
  map.observe((event) => {
    if (event.transaction.local) return
    const t = now()
    for (const sender of event.keysChanged) {
      const value = map.get(sender)
      record(lastSeen, sender, value.n, value.t, value.m, t)
    }
  })
  const write = (n) => map.set(key, { n, t: now(), m: measuring })
  const synced = new Promise((resolve) => provider.once('sync', resolve))
  return handle(key, write, synced, (sender) => map.get(sender)?.n, () => provider.destroy())
}

// y-protocols framing by hand (a lean client has no provider): sync (0), update (2), length.
function syncUpdateFrame (update) {
  const head = [0, 2]
  for (let len = update.length; ; len >>>= 7) {
    if (len < 0x80) { head.push(len); break }
    head.push((len & 0x7f) | 0x80)
  }
  const frame = Buffer.allocUnsafe(head.length + update.length)
  frame.set(head)
  frame.set(update, head.length)
  return frame
}

const MARK = '\u0002bench:' // starts every lean value: "MARK<sender>,<n>,<t>,<m>;"
const MARK_BYTES = Buffer.from(MARK)

// Every lean value in a received frame, wherever it sits in the frame's bytes.
function deliveries (data, key, lastSeen, t) {
  for (let at = data.indexOf(MARK_BYTES); at >= 0; at = data.indexOf(MARK_BYTES, at + 1)) {
    const end = data.indexOf(59, at) // ';'
    const [sender, n, sent, m] = data.toString('latin1', at + MARK_BYTES.length, end).split(',')
    if (sender === key) { // our own echo: the gateway's acknowledgement, sent once it is durable
      if (m === '1') stats.acks.push(t - Number(sent))
      continue
    }
    record(lastSeen, sender, Number(n), Number(sent), m === '1', t)
  }
}

function leanClient (room, params, userIndex, roomUsers) {
  if (plan.hocuspocus) return leanHocuspocusClient(room, params, userIndex, roomUsers)
  const query = new URLSearchParams(params).toString()
  const ws = new WebSocket(`${plan.url}/${room}${query ? '?' + query : ''}`)
  const doc = new Y.Doc() // only ever holds this user's key
  const map = doc.getMap('bench')
  const key = String(userIndex)
  const lastSeen = new Map(roomUsers.map((u) => [String(u), -1]))
  doc.on('update', (update) => { if (ws.readyState === WebSocket.OPEN) ws.send(syncUpdateFrame(update)) })
  ws.on('message', (data) => deliveries(data, key, lastSeen, now()))
  const write = (n) => map.set(key, `${MARK}${key},${n},${now().toFixed(3)},${measuring ? 1 : 0};`)
  // The server speaks first (its sync step 1) once the letter is loaded: that is "synced" here.
  const synced = new Promise((resolve) => ws.once('message', resolve))
  return handle(key, write, synced, (sender) => lastSeen.get(sender), () => ws.terminate())
}

// The same lean client in the Hocuspocus framing (`/v1/hocuspocus`, bench option
// `--hocuspocus`): every message behind the document's address, the token in-band, and the
// acknowledgement a sync status (8, 1) instead of the echo, matched to the oldest update sent.
function leanHocuspocusClient (room, params, userIndex, roomUsers) {
  const ws = new WebSocket(`${plan.url}/hocuspocus`)
  const address = varString(room)
  const doc = new Y.Doc()
  const map = doc.getMap('bench')
  const key = String(userIndex)
  const lastSeen = new Map(roomUsers.map((u) => [String(u), -1]))
  const unacknowledged = [] // [sent at, measured] of each update, oldest first
  doc.on('update', (update) => {
    if (ws.readyState !== WebSocket.OPEN) return
    ws.send(Buffer.concat([address, syncUpdateFrame(update)]))
    unacknowledged.push([now(), measuring])
  })
  ws.on('open', () => { // as a provider: the token, then its sync step 1 (an empty state vector)
    ws.send(Buffer.concat([address, Buffer.from([2, 0]), varString(params.token), varString('4.8.0')]))
    ws.send(Buffer.concat([address, Buffer.from([0, 0, 1, 0])]))
  })
  const step2 = Buffer.concat([address, Buffer.from([0, 1])])
  const synced = new Promise((resolve) => {
    ws.on('message', (data) => {
      const t = now()
      if (data.length === 1 && data[0] === 9) return ws.send(Buffer.from([10])) // ping
      if (data.length === address.length + 2 && data[address.length] === 8) { // sync status
        const [sent, measured] = unacknowledged.shift() || [t, false]
        if (measured && data[address.length + 1] === 1) stats.acks.push(t - sent)
        return
      }
      if (data.subarray(0, step2.length).equals(step2)) resolve() // the answer: synced
      deliveries(data, key, lastSeen, t)
    })
  })
  const write = (n) => map.set(key, `${MARK}${key},${n},${now().toFixed(3)},${measuring ? 1 : 0};`)
  return handle(key, write, synced, (sender) => lastSeen.get(sender), () => ws.terminate())
}

function varUint (n) {
  const out = []
  for (; ; n >>>= 7) {
    if (n < 0x80) { out.push(n); return Buffer.from(out) }
    out.push((n & 0x7f) | 0x80)
  }
}

function varString (text) {
  const bytes = Buffer.from(text, 'utf8')
  return Buffer.concat([varUint(bytes.length), bytes])
}

function percentile (sorted, p) {
  if (!sorted.length) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}

// One timer for all users instead of one setInterval each: user i's k-th update is due at
// start + phase_i + k * period (absolute, so a late tick does not lower the rate); how late each
// send was is recorded, which shows when the generator itself cannot keep up.
function schedule (clients, period) {
  const start = now()
  const due = clients.map(() => start + Math.random() * period)
  const timer = setInterval(() => {
    const t = now()
    for (let i = 0; i < clients.length; i++) {
      if (due[i] > t) continue
      if (measuring) stats.sendLateMs.push(t - due[i])
      clients[i].send()
      due[i] += period
      if (due[i] < t - period) due[i] = t // more than a period behind: drop, do not burst
    }
  }, Math.min(plan.tick_ms || 5, period / 4))
  return () => clearInterval(timer)
}

function diverged (clients) {
  let bad = 0
  for (const c of clients) {
    for (const peer of c.room) {
      if (c.lastOf(peer.key) !== peer.sentN()) bad++
    }
  }
  return bad
}

async function main () {
  await loadYjs()
  const clients = []
  let userIndex = 0
  // --stagger-s: open the clients over that many seconds instead of at once. Stock clients
  // renew their awareness every 15 s on a 3 s timer that starts with each client; opened
  // together, they all renew within the same fraction of a second, and since y-websocket sends
  // back every state it receives, each renewal storm stalls generator and server alike.
  const total = plan.rooms.reduce((n, r) => n + r.users.length, 0)
  const gap = (plan.stagger_s || 0) * 1000 / total
  const t0 = now()
  for (const { room, users } of plan.rooms) {
    const ids = users.map((_, i) => userIndex + i)
    const make = plan.lean ? leanClient : client
    const members = []
    for (const params of users) {
      if (gap) await new Promise((resolve) => setTimeout(resolve, gap))
      members.push(make(room, params, userIndex++, ids))
    }
    for (const c of members) clients.push({ ...c, room: members.filter((m) => m !== c) })
  }
  await Promise.all(clients.map((c) => c.synced))
  const connectMs = now() - t0
  process.stdout.write('{"phase": "synced"}\n')
  await new Promise((resolve) => process.stdin.once('data', resolve)) // the bench says "go"
  process.stdin.pause()
  const stop = schedule(clients, 1000 / plan.rate)
  await new Promise((resolve) => setTimeout(resolve, plan.warmup_s * 1000))
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  measuring = true
  process.stdout.write('{"phase": "measuring"}\n') // the bench samples the server's CPU now
  const cpu0 = process.cpuUsage()
  await new Promise((resolve) => setTimeout(resolve, plan.duration_s * 1000))
  measuring = false
  process.stdout.write('{"phase": "done"}\n')
  const cpu = process.cpuUsage(cpu0)
  loop.disable()
  stop()
  await new Promise((resolve) => setTimeout(resolve, plan.drain_s * 1000))
  const peers = plan.rooms[0].users.length - 1
  stats.sendLateMs.sort((a, b) => a - b)
  const out = {
    connections: clients.length,
    connect_ms: Math.round(connectMs),
    sent: stats.sent,
    expected_deliveries: stats.sent * peers,
    observed: stats.observed,
    coalesced: stats.coalesced,
    duplicated: plan.lean ? stats.duplicated : null, // a stock client cannot see them
    diverged_pairs: diverged(clients),
    loadgen_cpu_pct: Math.round((cpu.user + cpu.system) / 1e4 / plan.duration_s),
    // How late the generator's own event loop ran its timers (the histogram's samples include
    // the 10 ms sampling interval itself, subtracted here): tens of ms means the generator, not
    // the server, is the limit.
    loadgen_loop_delay_ms: { p50: loop.percentile(50) / 1e6 - 10, p99: loop.percentile(99) / 1e6 - 10,
      max: loop.max / 1e6 - 10 },
    loadgen_send_late_ms: { p50: percentile(stats.sendLateMs, 0.5),
      p99: percentile(stats.sendLateMs, 0.99) },
    // Every sample (µs-rounded): the bench pools them across generator processes and takes the
    // percentiles and rates there (gateway_bench.py, `_merge`).
    latencies: stats.latencies.map((ms) => Math.round(ms * 1000) / 1000),
    // Lean clients only: sender to its own echo, which the gateway sends once the update is in
    // the log (the reference server sends none).
    acks: stats.acks.map((ms) => Math.round(ms * 1000) / 1000)
  }
  // Exit only once the line is written: a pipe takes it asynchronously (MBs of samples).
  process.stdout.write(JSON.stringify(out) + '\n', () => {
    for (const c of clients) c.destroy()
    setTimeout(() => process.exit(0), 200)
  })
}

main().catch((err) => { console.error(err); process.exit(1) })
