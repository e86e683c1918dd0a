-- Snapshotter projections (DESIGN.md "PostgreSQL"). Written only by the snapshotter; every row
-- carries the log position it came from, and times are record timestamps, never now(), so a
-- rebuild from the log gives identical rows.

CREATE TABLE letters (
    letter_id     text PRIMARY KEY,
    firm_id       text NOT NULL,
    title         text NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    log_topic     text NOT NULL,
    log_partition int NOT NULL,
    log_offset    bigint NOT NULL
);
CREATE INDEX letters_firm ON letters (firm_id);

CREATE TABLE letter_version (
    letter_id      text NOT NULL REFERENCES letters (letter_id),
    version_number int NOT NULL CHECK (version_number >= 1),
    content        text NOT NULL,
    document       jsonb NOT NULL,
    ydoc_state     bytea NOT NULL,
    log_topic      text NOT NULL,
    log_partition  int NOT NULL,
    log_offset     bigint NOT NULL,  -- next offset folded in (records below it are included)
    change_data    jsonb NOT NULL,   -- {type: autosave|named|session-end, label, contributors, updates}
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (letter_id, version_number)
);

-- One row per audited fact. A record yields at most one row per change_type (a doc.update can
-- open an edit burst AND cut an autosave; a session.left ends a session AND cuts a version),
-- hence change_type in the uniqueness key. id is derived from that key, so it is replay-stable.
CREATE TABLE collaboration (
    id            uuid PRIMARY KEY,
    letter_id     text NOT NULL,
    user_id       text NOT NULL,
    change_type   text NOT NULL,
    change_data   jsonb NOT NULL,
    "timestamp"   timestamptz NOT NULL,
    log_topic     text NOT NULL,
    log_partition int NOT NULL,
    log_offset    bigint NOT NULL,
    UNIQUE (log_topic, log_partition, log_offset, change_type)
);
CREATE INDEX collaboration_letter_time ON collaboration (letter_id, "timestamp");
CREATE INDEX collaboration_user_time ON collaboration (user_id, "timestamp");

CREATE TABLE comment_threads (
    thread_id   text PRIMARY KEY,
    letter_id   text NOT NULL,
    anchor      jsonb NOT NULL,   -- {start, end, quote}: Yjs relative positions + quoted text
    status      text NOT NULL CHECK (status IN ('open', 'resolved')),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    resolved_by text,
    resolved_at timestamptz,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX comment_threads_letter ON comment_threads (letter_id);

-- Deleted comments stay as tombstones (deleted_at/deleted_by set, body kept for the audit).
CREATE TABLE comments (
    comment_id text PRIMARY KEY,
    thread_id  text NOT NULL REFERENCES comment_threads (thread_id),
    letter_id  text NOT NULL,
    author_id  text NOT NULL,
    body       text NOT NULL,
    mentions   jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    edited_at  timestamptz,
    deleted_at timestamptz,
    deleted_by text
);
CREATE INDEX comments_thread ON comments (thread_id, created_at);

-- Consumer positions (next offset to read), written in the same transaction as the rows.
CREATE TABLE consumer_positions (
    consumer_group text NOT NULL,
    topic          text NOT NULL,
    partition      int NOT NULL,
    next_offset    bigint NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);

-- The snapshotter's working state per letter (document, open edit bursts, sessions, version
-- counters), saved with the positions so a restart resumes exactly where the last commit left.
CREATE TABLE snapshotter_letter_state (
    letter_id     text PRIMARY KEY,
    log_topic     text NOT NULL,
    log_partition int NOT NULL,
    ydoc_state    bytea NOT NULL,
    state         jsonb NOT NULL
);
