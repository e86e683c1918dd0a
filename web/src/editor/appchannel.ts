// The gateway's application messages: y-protocol message type 100 whose body is a varstring of
// JSON, sent only to clients that connected with `events=1` (DESIGN.md "Application messages").
// A stock y-websocket client would log "Unable to compute message" for them; this registers the
// handler and passes each decoded message on.

import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import type { WebsocketProvider } from 'y-websocket'

export const MESSAGE_APP = 100

export interface AppMessage {
  type: string
  [key: string]: unknown
}

type Handler = (encoder: unknown, decoder: decoding.Decoder) => void

export function onAppMessage(
  provider: WebsocketProvider,
  listener: (message: AppMessage) => void,
): () => void {
  const handlers = provider.messageHandlers as unknown as Handler[]
  handlers[MESSAGE_APP] = (_encoder, decoder) => {
    let message: unknown
    try {
      message = JSON.parse(decoding.readVarString(decoder))
    } catch {
      return // a malformed notice is not worth breaking the editor for
    }
    if (typeof message === 'object' && message !== null && typeof (message as AppMessage).type === 'string') {
      listener(message as AppMessage)
    }
  }
  return () => {
    delete handlers[MESSAGE_APP]
  }
}

/** Send a command on the app channel; false when the socket is not open (nothing is queued). */
export function sendAppMessage(provider: WebsocketProvider, body: AppMessage): boolean {
  const ws = provider.ws
  if (!provider.wsconnected || ws === null || ws.readyState !== ws.OPEN) return false
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_APP)
  encoding.writeVarString(encoder, JSON.stringify(body))
  ws.send(encoding.toUint8Array(encoder))
  return true
}

/** A person's display name from the shapes app messages use: {user}, {author} or {name}. */
export function actorName(message: AppMessage): string | null {
  for (const key of ['user', 'author'] as const) {
    const person = message[key] as { name?: unknown } | null | undefined
    if (typeof person?.name === 'string' && person.name) return person.name
  }
  return typeof message.name === 'string' ? message.name : null
}

/** The id of whoever caused the message: {user: {id}}, {author: {id}} or {by}. */
export function actorId(message: AppMessage): string | null {
  for (const key of ['user', 'author'] as const) {
    const person = message[key] as { id?: unknown } | null | undefined
    if (typeof person?.id === 'string') return person.id
  }
  return typeof message.by === 'string' ? message.by : null
}
