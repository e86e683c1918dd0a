// The gateway's application messages: y-protocol message type 100 whose body is a varstring of
// JSON, sent only to clients that connected with `events=1` (DESIGN.md "Application messages").
// A stock y-websocket client would log "Unable to compute message" for them; this registers the
// handler and passes each decoded message on.

import * as decoding from 'lib0/decoding'
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

/** A person's display name from the shapes app messages use: {user: {name}} or {name}. */
export function actorName(message: AppMessage): string | null {
  const user = message.user
  if (typeof user === 'object' && user !== null && typeof (user as { name?: unknown }).name === 'string') {
    return (user as { name: string }).name
  }
  return typeof message.name === 'string' ? message.name : null
}
