"""What a comment request carries (a REST body, an app message's JSON), checked: the anchor as
given, the body and its mentions."""

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.collab.shared import CollabError

MAX_BODY = 10_000  # characters, as the event schema allows


class AnchorIn(BaseModel):
    """Plain-text offsets (`from`, `to`) or Yjs relative positions (`start`, `end`, base64, and
    optionally `after`: see `Anchor`)."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        # Checked in `comment_anchors.anchor` (with messages that say which pair is missing);
        # told here too.
        json_schema_extra={"oneOf": [{"required": ["from", "to"]}, {"required": ["start", "end"]}]},
    )
    from_: int | None = Field(default=None, alias="from", ge=0)
    to: int | None = Field(default=None, ge=0)
    start: str | None = Field(default=None, max_length=1024)
    end: str | None = Field(default=None, max_length=1024)
    after: str | None = Field(default=None, max_length=1024)


class NewComment(BaseModel):
    # At most MAX_BODY characters, not blank: checked in content(), which answers a long body
    # with 413; the schema only tells.
    body: str = Field(json_schema_extra={"pattern": r"\S", "maxLength": MAX_BODY})
    # User ids, as tokens' `sub` (at most 256 characters, as `UserRef.id`): the letters topic
    # is kept forever, and a longer one names nobody.
    mentions: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list, max_length=50
    )

    def content(self) -> dict[str, Any]:
        """The event's `body` and `mentions` (checked, mentions deduplicated)."""
        if len(self.body) > MAX_BODY:
            raise CollabError(413, f"comment body exceeds {MAX_BODY} characters")
        if not self.body.strip():
            raise CollabError(422, "comment body is empty")
        return {"body": self.body, "mentions": list(dict.fromkeys(u for u in self.mentions if u))}


class NewThread(NewComment):
    anchor: AnchorIn


def parse(model: type[BaseModel], data: Any) -> Any:
    """`data` (a REST body, or an app message's parsed JSON) as `model`, or a 422 naming the field.
    Validated as JSON text, so that a lone surrogate ("\\ud800", valid JSON but not Unicode,
    which json.loads keeps) is refused here rather than by the event it would have become."""
    if isinstance(data, BaseModel):  # checked by FastAPI already, but as Python, not JSON
        data = data.model_dump(mode="json", by_alias=True, exclude_unset=True)
    try:
        return model.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CollabError(422, f"invalid request: {where}: {first['msg']}") from None
