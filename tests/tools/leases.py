"""Another backfill run's projector lease, as the tests of a run that lost its lease forge it."""

from tools.backfill import LOST

OTHER = "elsewhere 4242 another-boot/1 t"  # another backfill's token: host pid machine random
TOOK_OVER = LOST.format("another backfill, pid 4242 on elsewhere, took it over")
