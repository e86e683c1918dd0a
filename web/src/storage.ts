// Web storage that may be refused. A page framed by another site, where the browser blocks
// third-party storage (Chromium Incognito, "block third-party cookies"), throws "Access is
// denied for this document" on merely reading `sessionStorage` or `localStorage`: there the page
// keeps what it would store in memory, for as long as it stays open, and works on.

export interface KeyValueStore {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/** Lasts as long as the page: what a blocked store falls back to. */
class MemoryStore implements KeyValueStore {
  private readonly items = new Map<string, string>()
  getItem(key: string): string | null {
    return this.items.get(key) ?? null
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value)
  }
  removeItem(key: string): void {
    this.items.delete(key)
  }
}

/**
 * The browser's store if this document may use it, else memory. Each call is guarded too: a
 * store can also refuse a write (quota, storage cleared or blocked while the page is open).
 */
function guarded(open: () => Storage): KeyValueStore {
  const memory = new MemoryStore()
  let store: Storage | null = null
  try {
    store = open()
    store.getItem('steno.probe') // some browsers only refuse on use
  } catch {
    store = null
  }
  return {
    getItem: (key) => {
      try {
        return store ? store.getItem(key) : memory.getItem(key)
      } catch {
        return memory.getItem(key)
      }
    },
    setItem: (key, value) => {
      memory.setItem(key, value) // read back from memory if the store refuses later
      try {
        store?.setItem(key, value)
      } catch {
        store = null
      }
    },
    removeItem: (key) => {
      memory.removeItem(key)
      try {
        store?.removeItem(key)
      } catch {
        store = null
      }
    },
  }
}

/** Per tab: the session's token. */
export const tabStore: KeyValueStore = guarded(() => window.sessionStorage)
/** Per browser profile: the recent letters. */
export const browserStore: KeyValueStore = guarded(() => window.localStorage)
