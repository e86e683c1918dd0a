// Who wrote under which Yjs client ids, for writers no awareness state names: a backend or a
// script posting an update over REST (`POST /v1/letters/{id}/updates`) never opens the letter.
// The gateway names them in a `doc.writer` app message sent before the update itself
// (README "App channel"), so the edit highlight finds the name when the update lands.

import type { AppMessage } from './appchannel'

export interface Author {
  name: string
  color: string
}

// A few writers' ids at a time; the oldest are forgotten first (a Map keeps insertion order).
const MAX_CLIENTS = 256

export class Writers {
  private readonly byClient = new Map<number, Author>()

  /** Take a `doc.writer` message: `{user: {id, name, color}, clients: [Yjs client ids]}`. */
  note(message: AppMessage): void {
    const user = message.user as Partial<Author> | undefined
    if (typeof user?.name !== 'string' || !Array.isArray(message.clients)) return
    const author = { name: user.name, color: typeof user.color === 'string' ? user.color : '#888888' }
    for (const client of message.clients) {
      if (typeof client !== 'number') continue
      this.byClient.delete(client) // noted again: the newest
      this.byClient.set(client, author)
    }
    for (const oldest of this.byClient.keys()) {
      if (this.byClient.size <= MAX_CLIENTS) break
      this.byClient.delete(oldest)
    }
  }

  get(client: number): Author | undefined {
    return this.byClient.get(client)
  }
}
