-- Letters whose saved working state (snapshotter_letter_state, saved only now and then) lags
-- records the snapshotter has committed: loading one folds its records from `since` (its first
-- record not in the state) again. A letter not listed is current, and loading it reads no log
-- (a quiet letter's `covers` may lie far behind its partition's position).
CREATE TABLE snapshotter_unsaved (
    letter_id text PRIMARY KEY,
    since     bigint NOT NULL
);
