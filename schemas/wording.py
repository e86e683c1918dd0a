"""Counts in what people read (log lines, the tools' outputs): "1 update", "2 updates", never
"1 updates"."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and `noun`, singular for exactly one (`plural`: default `noun` + "s")."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def numbered(noun: str, numbers: list[str], plural: str | None = None) -> str:
    """`noun` with what it names: "paragraph 2", "paragraphs 2, 3" (the plural for none)."""
    return f"{noun if len(numbers) == 1 else plural or noun + 's'} {', '.join(numbers)}".rstrip()
