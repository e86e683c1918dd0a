-- Poison records (issue 9): a record whose fold kept failing was skipped after a bounded
-- number of attempts, so its partition continues. One row per consumer and log position.
CREATE TABLE quarantine (
    consumer        text        NOT NULL,
    log_topic       text        NOT NULL,
    log_partition   int         NOT NULL,
    log_offset      bigint      NOT NULL,
    letter_id       text        NOT NULL,
    event_type      text        NOT NULL,
    error           text        NOT NULL,
    attempts        int         NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, log_topic, log_partition, log_offset)
);
