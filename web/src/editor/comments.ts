// The comments sidebar (contract of issue 7): threads anchored to text, replies, mentions,
// resolve/reopen, editing and deleting your own comments. Shows "not available" when the
// gateway has no comments endpoint yet.

import type { Editor } from '@tiptap/core'

import {
  ApiError,
  NotAvailable,
  restoring,
  type Api,
  type Comment,
  type CommentAnchor,
  type Thread,
} from '../api'
import type { Claims } from '../auth'
import { h, instantTime, randomKey, replaceChildren, submitOnce } from '../dom'
import {
  anchorRange,
  lostAnchors,
  selectionAnchor,
  showAnchors,
  threadRange,
  unanchorable,
  type Arrived,
} from './anchors'
import { failure, lostReply, sayFailure, statusLine, type StatusLine } from './comment-lines'
import { textOffset } from './text'

export interface Person {
  id: string
  name: string
}

export interface CommentsPanel {
  element: HTMLElement
  /** Reload the threads; with `commentId`, retry a few times until the projection has it. */
  refresh(commentId?: string): Promise<void>
  /** Mark the loaded threads' text again (the letter's text arrived after them). */
  markAnchors(): void
  /** Show this thread: scrolled to and outlined in the list, its text selected in the letter. */
  showThread(threadId: string): void
  /** The session is over (`why`: expired, revoked): nothing can be posted; null: back. */
  setClosed(why: string | null): void
  /** Whether a comment, reply or edit box holds text not sent (closing the page would lose it). */
  unsent(): boolean
}

// Reads come from the projector's Redis view, which may trail a live notice by a moment.
const CATCH_UP_TRIES = 8
const CATCH_UP_DELAY_MS = 750
const LOST_DEBOUNCE_MS = 500

const COMMENTER_ROLES = new Set(['editor', 'commenter', 'service'])

export function commentsPanel(
  api: Api,
  letterId: string,
  editor: Editor,
  me: Pick<Claims, 'sub' | 'role'>,
  present: () => Person[],
): CommentsPanel {
  const role = me.role
  // Who can be mentioned: the people here now, and everyone who has commented on this letter.
  const authors = new Map<string, Person>()
  const people = (): Person[] => {
    const everyone = new Map(authors)
    for (const person of present()) everyone.set(person.id, person)
    return [...everyone.values()].sort((a, b) => a.name.localeCompare(b.name))
  }
  const drafts = new Map<string, string>() // thread id -> unsent reply
  // thread id -> its reply box's fill as first sent, with its key (kept while the list is rebuilt)
  const replyKeys = new Map<string, Keyed<{ body: string; mentions: string[] }>>()
  // thread id -> the thread a reply is being sent to: its quote and authors, should it go meanwhile
  const replying = new Map<string, Thread>()
  const edits = new Map<string, string>() // comment id -> its text being edited
  const confirming = new Set<string>() // comment ids whose Delete asks "sure?"
  let loaded: Thread[] = []
  const asked = new Set<string>() // detached threads whose text came back here: loaded again
  let current: string | null = null // the thread opened from a mention: outlined in the list
  let revealing: string | null = null // still to show, once a load has it (the projection trails)
  const list = h('div', { class: 'threads', 'aria-live': 'polite' })
  const status = h('p', { class: 'muted', role: 'status' })
  const line = statusLine(status)
  // Replies whose thread a colleague deleted while they were typed: kept until dismissed.
  const lostBox = h('div', { class: 'lost-replies' })
  const lostReplies = new Map<string, string>() // thread id -> its reply shown in lostBox
  const mayComment = COMMENTER_ROLES.has(role)
  let canComment = mayComment // not while the session is over (setClosed)
  let everLoaded = false // a list was loaded: the empty list's note is shown
  const emptyNote = (): string =>
    canComment ? 'No comments yet. Select text and add one.' : 'No comments yet.'
  const composer = mayComment
    ? newThreadForm(
        api,
        letterId,
        editor,
        people,
        () => void refresh(),
        line,
        (body, said, clear) => awaitSaved(body, null, said, clear),
      )
    : null
  const closedNote = h('p', { class: 'muted comments-closed', hidden: true })
  const element = h(
    'section',
    { class: 'panel comments', 'aria-labelledby': 'comments-heading' },
    h('h2', { id: 'comments-heading' }, 'Comments'),
    composer ?? h('p', { class: 'muted' }, `Your role (${role}) can read comments but not add them.`),
    closedNote,
    status,
    lostBox,
    list,
  )

  const refresh = (commentId?: string): Promise<void> =>
    load((threads) => !commentId || threads.some((t) => t.comments.some((c) => c.comment_id === commentId)))

  // Loads overlap (a reply's reload, a colleague's notice, a catch-up retry) and their answers
  // may come back in another order: only the newest one's is drawn, or an older list would
  // replace a newer one (and flag a reply lost, or restore one, from a stale list).
  let loads = 0

  /** Show the threads; load again a few times while `settled` says the projection trails. */
  async function load(settled: (threads: Thread[]) => boolean, tries = CATCH_UP_TRIES): Promise<void> {
    const generation = ++loads
    try {
      const { threads } = await api.listComments(letterId)
      // Positions no document can place (a buggy client's): shown as text deleted, never retried.
      for (const thread of threads) if (unanchorable(thread.anchor)) thread.detached = true
      // Its catch-up goes on even if a newer load was sent: that one may wait for something else.
      if (!settled(threads) && tries > 1) setTimeout(() => void load(settled, tries - 1), CATCH_UP_DELAY_MS)
      if (generation !== loads) return
      for (const thread of threads) if (!thread.detached) asked.delete(thread.thread_id)
      const comments = threads.flatMap((t) => t.comments)
      for (const comment of comments) authors.set(comment.author.id, comment.author)
      // An edit box (or a delete confirmation) of a comment deleted meanwhile (in another tab):
      // gone with it, or leaving would ask about its text for ever.
      const listed = new Set(comments.map((c) => c.comment_id))
      for (const id of edits.keys()) if (!listed.has(id)) edits.delete(id)
      for (const id of confirming) if (!listed.has(id)) confirming.delete(id)
      settleSaved(threads)
      everLoaded = true
      line.note(threads.length ? '' : emptyNote())
      // The list is rebuilt whenever anyone comments: keep the reply being typed, and its focus.
      const active = (document.activeElement as HTMLElement | null)?.dataset
      const typingIn = active?.thread ?? active?.comment
      keepLostReplies(threads, typingIn)
      replaceChildren(list, ...sortThreads(threads).map((t) => threadView(t)))
      if (typingIn)
        list
          .querySelector<HTMLElement>(
            `textarea[data-thread="${CSS.escape(typingIn)}"], textarea[data-comment="${CSS.escape(typingIn)}"]`,
          )
          ?.focus()
      loaded = threads
      mark()
      reveal()
      if (composer) composer.hidden = !canComment
    } catch (error) {
      if (generation !== loads) return // a newer load says how the list is
      if (composer) composer.hidden = !canComment || error instanceof NotAvailable
      line.note(
        error instanceof NotAvailable
          ? 'Comments are not available on this server yet.'
          : `Could not load comments: ${(error as Error).message}`,
      )
    }
  }

  /** Replies typed into threads no longer listed (their last comment deleted by its author):
   * shown with who deleted them, not dropped with their box. `typingIn`: the box focused. */
  function keepLostReplies(threads: Thread[], typingIn: string | undefined): void {
    const listed = new Set(threads.map((t) => t.thread_id))
    for (const [id, text] of drafts) {
      if (listed.has(id)) continue
      drafts.delete(id)
      replyKeys.delete(id)
      if (!text.trim() || lostReplies.has(id)) continue
      const thread = loaded.find((t) => t.thread_id === id) ?? replying.get(id)
      replying.delete(id)
      // Only its author deletes a comment: whoever wrote the comments last seen deleted them.
      const names = new Set(thread?.comments.map((c) => (c.author.id === me.sub ? 'You' : c.author.name)))
      const notice = lostReply([...names], thread?.anchor.quote ?? '', text, (focused) => {
        lostReplies.delete(id)
        // No other notice took the focus: the composer (or a reply box) does, not <body>.
        if (!focused) (composer?.hidden ? list : (composer ?? list)).querySelector('textarea')?.focus()
      })
      lostReplies.set(id, text)
      lostBox.append(notice)
      if (typingIn === id) notice.querySelector('textarea')?.focus()
    }
  }

  // Sends with no answer ("may have been saved"): once a load lists the comment (a new one of
  // mine with this body, in this thread for a reply), its box is emptied and the line says so.
  interface MaySaved {
    body: string
    thread: string | null
    said: string // the line's failure text, replaced if still shown
    before: Set<string> // the comments listed when it was sent: the one it made is not among them
    clear: () => void
  }
  const maySaved: MaySaved[] = []

  function found(entry: MaySaved, threads: Thread[]): boolean {
    return threads.some(
      (t) =>
        (entry.thread === null || t.thread_id === entry.thread) &&
        t.comments.some(
          (c) => c.author.id === me.sub && c.body.trim() === entry.body && !entry.before.has(c.comment_id),
        ),
    )
  }

  function awaitSaved(body: string, thread: string | null, said: string, clear: () => void): void {
    const before = new Set(loaded.flatMap((t) => t.comments.map((c) => c.comment_id)))
    const entry = { body, thread, said, before, clear }
    maySaved.push(entry)
    // The projection may trail the send: loaded again a few times until it lists it.
    void load((threads) => found(entry, threads))
  }

  function settleSaved(threads: Thread[]): void {
    for (const entry of [...maySaved]) {
      if (!found(entry, threads)) continue
      maySaved.splice(maySaved.indexOf(entry), 1)
      entry.clear()
      line.swap(entry.said, 'It was saved.')
    }
  }

  function showThread(threadId: string): void {
    current = revealing = threadId
    showLoaded() // outline it at once if it is loaded already
    void load((threads) => threads.some((t) => t.thread_id === threadId))
  }

  function reveal(): void {
    const thread = loaded.find((t) => t.thread_id === revealing)
    if (!thread) return
    revealing = null
    const article = list.querySelector<HTMLElement>(
      `article[data-thread-id="${CSS.escape(thread.thread_id)}"]`,
    )
    article?.scrollIntoView({ block: 'nearest' })
    // As a click on its quote; a detached thread has no text left, so the focus goes to it.
    if (thread.detached) article?.focus({ preventScroll: true })
    else selectAnchor(editor, thread)
  }

  function threadView(thread: Thread): HTMLElement {
    const quote = h(
      'button',
      { type: 'button', class: 'quote', title: 'Show in the letter' },
      `“${thread.anchor.quote || '…'}”`,
    )
    quote.addEventListener('click', () => selectAnchor(editor, thread))
    const state = thread.detached ? 'detached (its text was deleted)' : thread.resolved ? 'resolved' : 'open'
    const toggle = h('button', { type: 'button', class: 'link' }, thread.resolved ? 'Reopen' : 'Resolve')
    toggle.addEventListener(
      'click',
      () => void act(() => api.setResolved(letterId, thread.thread_id, !thread.resolved)),
    )
    return h(
      'article',
      {
        class: `thread${thread.resolved ? ' resolved' : ''}${thread.detached ? ' detached' : ''}`,
        'aria-label': `Comment thread, ${state}`,
        'data-thread-id': thread.thread_id, // not data-thread: that is the reply box's, for its focus
        'aria-current': thread.thread_id === current ? 'true' : null,
        tabindex: -1,
      },
      h('header', {}, quote, h('span', { class: 'badge' }, state)),
      h('ol', { class: 'comment-list' }, ...thread.comments.map((c) => commentView(thread, c))),
      canComment ? replyForm(thread) : null,
      canComment ? h('footer', {}, toggle) : null,
    )
  }

  function commentView(thread: Thread, c: Comment): HTMLElement {
    const own = canComment && c.author.id === me.sub // the server lets the author alone change it
    const editing = own && edits.has(c.comment_id)
    return h(
      'li',
      { 'data-comment': c.comment_id },
      h('strong', {}, c.author.name),
      ' ',
      instantTime(c.created_at),
      c.edited_at ? ' (edited)' : '',
      editing ? editForm(thread, c) : h('p', {}, ...highlightMentions(c.body)),
      own && !editing ? ownActions(thread, c) : null,
    )
  }

  /** Edit / Delete for your own comment; Delete asks once more before it goes. */
  function ownActions(thread: Thread, c: Comment): HTMLElement {
    const id = c.comment_id
    const rebuild = (): void => showLoaded()
    if (confirming.has(id)) {
      const yes = h('button', { type: 'button', class: 'link danger' }, 'Yes, delete')
      const no = h('button', { type: 'button', class: 'link' }, 'Cancel')
      yes.addEventListener('click', () => {
        confirming.delete(id)
        void act(() => api.deleteComment(letterId, thread.thread_id, id))
      })
      no.addEventListener('click', () => {
        confirming.delete(id)
        rebuild()
      })
      return h('div', { class: 'comment-actions', role: 'group' }, 'Delete this comment? ', yes, no)
    }
    const edit = h('button', { type: 'button', class: 'link' }, 'Edit')
    const remove = h('button', { type: 'button', class: 'link' }, 'Delete')
    edit.addEventListener('click', () => {
      edits.set(id, c.body)
      rebuild()
      list.querySelector<HTMLElement>(`textarea[data-comment="${CSS.escape(id)}"]`)?.focus()
    })
    remove.addEventListener('click', () => {
      confirming.add(id)
      rebuild()
      list.querySelector<HTMLElement>(`li[data-comment="${CSS.escape(id)}"] .comment-actions button`)?.focus()
    })
    return h('div', { class: 'comment-actions' }, edit, remove)
  }

  function editForm(thread: Thread, c: Comment): HTMLElement {
    const id = c.comment_id
    const box = h('textarea', { rows: 2, 'aria-label': 'Edit your comment', 'data-comment': id })
    box.value = edits.get(id) ?? c.body
    box.addEventListener('input', () => edits.set(id, box.value))
    const cancel = h('button', { type: 'button', class: 'link' }, 'Cancel')
    cancel.addEventListener('click', () => {
      edits.delete(id)
      showLoaded()
    })
    const form = h(
      'form',
      { class: 'edit-comment' },
      box,
      mentionPicker(box, people),
      h('button', { type: 'submit' }, 'Save'),
      cancel,
    )
    submitOnce(form, async () => {
      const body = box.value.trim()
      if (!body) return
      // Kept in the box until the server has taken it: a refusal leaves the text to fix.
      await act(async () => {
        await api.editComment(letterId, thread.thread_id, id, body, mentionsIn(body, people()))
        edits.delete(id)
      }, 'edit')
    })
    box.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') cancel.click()
    })
    return form
  }

  /** Draw the loaded threads again (an edit or a delete confirmation opened or closed). */
  function showLoaded(): void {
    replaceChildren(list, ...sortThreads(loaded).map((t) => threadView(t)))
  }

  function replyForm(thread: Thread): HTMLElement {
    const box = h('textarea', {
      rows: 2,
      'aria-label': 'Reply',
      placeholder: 'Reply… (@ to mention)',
      'data-thread': thread.thread_id,
    })
    box.value = drafts.get(thread.thread_id) ?? ''
    box.addEventListener('input', () => drafts.set(thread.thread_id, box.value))
    const form = h(
      'form',
      { class: 'reply' },
      box,
      mentionPicker(box, people),
      h('button', { type: 'submit' }, 'Reply'),
    )
    // One key per fill, as the letter-create form: a retry of the same reply is answered with
    // the comment the first try made; an edited reply is another comment.
    form.addEventListener('input', () => replyKeys.delete(thread.thread_id))
    submitOnce(form, async () => {
      const id = thread.thread_id
      const body = box.value.trim()
      if (!body) return
      const tried = keyedTry(replyKeys.get(id), body, () => ({ body, mentions: mentionsIn(body, people()) }))
      replyKeys.set(id, tried)
      drafts.delete(id) // before the reload that shows the reply: its box comes back empty
      replying.set(id, thread) // the reload may find its thread deleted meanwhile
      const { request, key } = tried
      // No answer: once listed, its box (the draft kept below) is emptied, if not changed since.
      const unanswered = (said: string): void =>
        awaitSaved(request.body, id, said, () => {
          if (drafts.get(id)?.trim() !== request.body) return
          drafts.delete(id)
          replyKeys.delete(id)
        })
      const sent = await act(
        () => api.reply(letterId, id, request.body, request.mentions, key),
        'reply',
        unanswered,
      )
      if (sent) {
        replyKeys.delete(id)
        replying.delete(id)
      } else if (!drafts.has(id)) {
        drafts.set(id, box.value) // kept for the retry if the list is rebuilt
        if (!loaded.some((t) => t.thread_id === id)) void refresh() // its thread went: shown as lost
      }
    })
    return form
  }

  /** Load the threads again once the edits pause, for the ids `due` takes (none: not at all),
   * until `settled` says the server has them as expected. */
  const reloadOnPause = (
    due: () => Set<string>,
    settled: (ids: Set<string>, thread: Thread) => boolean,
  ): (() => void) => {
    let timer = 0
    return () => {
      clearTimeout(timer)
      timer = window.setTimeout(() => {
        const ids = due()
        if (ids.size) void load((threads) => threads.every((t) => settled(ids, t)))
      }, LOST_DEBOUNCE_MS)
    }
  }

  // Someone (here or elsewhere) deleted the whole text of a marked thread: the server now lists
  // it as detached. Load the threads again once the edits pause, until it says so.
  const lost = new Set<string>()
  const reloadLost = reloadOnPause(
    () => {
      const ids = new Set(lost)
      lost.clear()
      return ids
    },
    (ids, t) => !ids.has(t.thread_id) || t.detached || t.resolved,
  )
  editor.on('beforeTransaction', ({ transaction, nextState }) => {
    if (!transaction.docChanged) return
    for (const thread of lostAnchors(editor.state, nextState)) lost.add(thread)
    if (lost.size) reloadLost()
  })

  // A detached thread's text came back (its deletion undone, here or elsewhere): its anchor
  // finds the copies Yjs restored (anchors.ts `restored`), as the server's does. Load the threads
  // again once the edits pause, until the server says so; once per detachment (`asked`).
  const reloadBack = reloadOnPause(
    () => {
      const back = new Set(
        loaded
          .filter((t) => t.detached && !asked.has(t.thread_id) && threadRange(editor, t))
          .map((t) => t.thread_id),
      )
      for (const id of back) asked.add(id)
      return back
    },
    (ids, t) => !ids.has(t.thread_id) || !t.detached,
  )
  editor.on('update', () => {
    if (loaded.some((t) => t.detached && !asked.has(t.thread_id))) reloadBack() // else none to ask about
  })

  /** Whether `call`, a try of the user's `what`, succeeded (the threads are then reloaded, as
   * after one that may have: the list then shows whether it did). */
  async function act(
    call: () => Promise<unknown>,
    what = 'change',
    unanswered?: (said: string) => void,
  ): Promise<boolean> {
    line.clear() // tried again: the outcome replaces the last failure
    const sentOnline = navigator.onLine
    try {
      await call()
    } catch (error) {
      const failed = failure(error, what, sentOnline, (e) =>
        restoring(e) ? e.message : e instanceof ApiError ? `The server refused: ${e.message}` : String(e),
      )
      sayFailure(line, failed)
      if (failed.unanswered && unanswered) unanswered(failed.text)
      else if (failed.unanswered) void refresh()
      return false
    }
    await refresh()
    return true
  }

  // A thread's anchor names characters this page has not received yet (typed just before the
  // comment): marked by the offsets for now, and again by its positions once they arrive.
  let arrived: Arrived | null = null
  let remarkTimer = 0
  const mark = (): void => {
    arrived = showAnchors(editor, loaded)
  }
  editor.on('update', () => {
    if (!arrived?.()) return
    clearTimeout(remarkTimer)
    remarkTimer = window.setTimeout(mark) // not inside the dispatch of the edit
  })

  function setClosed(why: string | null): void {
    canComment = mayComment && why === null
    closedNote.hidden = why === null || !mayComment
    closedNote.textContent = why === null ? '' : 'Comments cannot be added or changed: your session is over.'
    if (composer) composer.hidden = !canComment
    if (everLoaded && !loaded.length) line.note(emptyNote()) // not "Select text and add one" now
    showLoaded() // without reply boxes and Edit / Delete, or with them again
  }

  function unsent(): boolean {
    const bodies = new Map(loaded.flatMap((t) => t.comments).map((c) => [c.comment_id, c.body]))
    return (
      Boolean(composer?.querySelector('textarea')?.value.trim()) ||
      [...drafts.values()].some((text) => text.trim()) ||
      [...edits].some(([id, text]) => text.trim() !== bodies.get(id)?.trim()) ||
      lostReplies.size > 0
    )
  }

  return { element, refresh, markAnchors: mark, showThread, setClosed, unsent }
}

function newThreadForm(
  api: Api,
  letterId: string,
  editor: Editor,
  people: () => Person[],
  done: () => void,
  line: StatusLine,
  unanswered: (body: string, said: string, clear: () => void) => void,
): HTMLFormElement {
  const box = h('textarea', {
    rows: 3,
    'aria-label': 'New comment on the selected text',
    placeholder: 'Select text in the letter, then comment… (@ to mention)',
  })
  const submit = h('button', { type: 'submit' }, 'Comment on selection')
  const target = h('p', { class: 'muted small comment-target' })
  const showTarget = (): void => {
    const { from, to, empty } = editor.state.selection
    const quote = [...editor.state.doc.textBetween(from, to, ' ')] // code points: no half emoji
    target.textContent = empty
      ? 'No text selected.'
      : `On: “${quote.length > 80 ? `${quote.slice(0, 80).join('')}…` : quote.join('')}”`
  }
  editor.on('selectionUpdate', showTarget)
  showTarget()
  const form = h('form', { class: 'new-thread' }, target, box, mentionPicker(box, people), submit)
  // One key per fill, as the letter-create form: a retry of the same comment (after no answer)
  // is answered with the thread the first try made; an edited comment, or one on another
  // selection, is another thread (keyedTry).
  let tried: Keyed<{ body: string; anchor: CommentAnchor; mentions: string[] }> | null = null
  form.addEventListener('input', () => (tried = null))
  submitOnce(form, async () => {
    const { from, to, empty } = editor.state.selection
    const body = box.value.trim()
    line.clear() // tried again: the outcome replaces the last failure
    if (empty || !body) {
      line.fail(empty ? 'Select the text the comment is about first.' : 'Write a comment first.')
      return
    }
    // Positions in this page's document, not offsets: the server's has the edits made since the
    // selection (a colleague typing above it), and offsets would land on other text there.
    const anchor = selectionAnchor(editor.state, from, to) ?? {
      from: textOffset(editor.state.doc, from),
      to: textOffset(editor.state.doc, to),
    }
    const sentOnline = navigator.onLine
    try {
      // Offsets move with a colleague's typing above: the text they hold says which selection.
      const at = 'start' in anchor ? anchor : editor.state.doc.textBetween(from, to, ' ')
      const same = JSON.stringify([body, at])
      tried = keyedTry(tried, same, () => ({ body, anchor, mentions: mentionsIn(body, people()) }))
      const { request, key } = tried
      await api.createComment(letterId, request.body, request.anchor, request.mentions, key)
      tried = null
      box.value = ''
      done()
    } catch (error) {
      const failed = failure(error, 'comment', sentOnline, (e) =>
        restoring(e) ? e.message : `Could not add the comment: ${(e as Error).message}`,
      )
      sayFailure(line, failed)
      // The list shows whether it was saved: if so, the box is emptied (if not changed since).
      const sent = tried?.request.body
      if (failed.unanswered && sent)
        unanswered(sent, failed.text, () => {
          if (box.value.trim() !== sent) return
          box.value = ''
          tried = null
        })
    }
  })
  return form
}

/** A comment form's fill as first sent: its `Idempotency-Key`, what makes it the same comment
 * (`same`), and the request. */
interface Keyed<T> {
  key: string
  same: string
  request: T
}

/** A try of a fill: the first try's key and request again while `same` (its text, a new
 * thread's anchor) is unchanged, so a retry after no answer sends exactly the request its key
 * was first used with (the server answers a key with another request 422; the mentions, of
 * the people here, may have changed meanwhile); else, another comment, a new key with
 * `request()` (a selection changed after a try that made its thread makes a second one, as
 * asked). */
function keyedTry<T>(first: Keyed<T> | null | undefined, same: string, request: () => T): Keyed<T> {
  return first?.same === same ? first : { key: randomKey(), same, request: request() }
}

/** A keyboard-friendly way to mention someone: pick a name, "@Name" goes into the text. */
function mentionPicker(box: HTMLTextAreaElement, people: () => Person[]): HTMLElement {
  const select = h('select', { 'aria-label': 'Mention a colleague', class: 'mention' })
  const fill = (): void => {
    replaceChildren(
      select,
      h('option', { value: '' }, '@ Mention…'),
      ...people().map((p) => h('option', { value: p.name }, p.name)),
    )
  }
  select.addEventListener('focus', fill)
  select.addEventListener('pointerdown', fill)
  select.addEventListener('change', () => {
    if (!select.value) return
    box.value = `${box.value}${box.value && !box.value.endsWith(' ') ? ' ' : ''}@${select.value} `
    box.dispatchEvent(new Event('input', { bubbles: true })) // as typed: the draft and key follow
    select.value = ''
    box.focus()
  })
  fill()
  return select
}

export function mentionsIn(body: string, people: Person[]): string[] {
  return people.filter((p) => body.includes(`@${p.name}`)).map((p) => p.id)
}

function highlightMentions(body: string): (string | HTMLElement)[] {
  return body
    .split(/(@[A-Z][\w'-]*(?: [A-Z][\w'-]*)?)/)
    .map((part, i) => (i % 2 ? h('mark', { class: 'mention-tag' }, part) : part))
}

function sortThreads(threads: Thread[]): Thread[] {
  return [...threads].sort((a, b) => Number(a.resolved) - Number(b.resolved) || a.anchor.from - b.anchor.from)
}

function selectAnchor(editor: Editor, thread: Thread): void {
  if (thread.detached) return
  // The mark has followed the edits made since the threads were loaded; the offsets have not.
  // Resolved threads are not marked: found from their anchor's positions (or offsets) now.
  const range = anchorRange(editor, thread.thread_id) ?? threadRange(editor, thread)
  if (!range) return
  const { from, to } = range
  editor.chain().focus().setTextSelection({ from, to }).scrollIntoView().run()
}
