"""The application shell: the `steno-collab` command, the embedded run mode and its services.

Reads settings from the environment once, wires services together; nothing imports it.
"""
