"""Collaboration features beside the document: comments with anchors and mentions,
notifications, advisory section locks, presence reads, and the WebSocket app channel.

Each change is appended to the letter's partition first; reads come from the projector's Redis
views (shared.Collab.caught_up gives read-your-writes).
"""
