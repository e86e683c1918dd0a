"""Live letters: the rooms this instance holds in memory, their connections, presence and
client-id owners, the appends to the log (and the rescue when one fails), loading, and the
tail of other instances' events."""
