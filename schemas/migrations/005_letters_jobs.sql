-- The letters of each rebuild of chosen letters (`backfill snapshotter --letters/--since`),
-- keyed by its consumer group, whose positions in consumer_positions mark it: written in the
-- transaction that marks it, deleted with its positions (a reset deletes both). The next such
-- run finishes an interrupted job from them, whatever letters it chooses itself
-- (tools/backfill_snapshotter.py): its group, a hash, does not say which letters it had.
CREATE TABLE letters_jobs (
    consumer_group text PRIMARY KEY,
    letters        text[] NOT NULL
);
