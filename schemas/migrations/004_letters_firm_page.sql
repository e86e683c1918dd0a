-- The letter list's keyset page (gateway/listing.py `_FIRST`, `_AFTER`): a firm's letters newest first,
-- ids in byte order. Without it every page read and sorted the firm's whole row set. It also
-- serves every other `firm_id =` lookup, so the plain index goes. Built in the migration's
-- transaction (no CONCURRENTLY there): it holds off the snapshotter's writes, not reads, while
-- it builds, about a second per million letters, once, at `migrate` before the upgrade starts.
CREATE INDEX letters_firm_page ON letters (firm_id, created_at DESC, letter_id COLLATE "C" DESC);
DROP INDEX letters_firm;
