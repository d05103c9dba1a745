"""A checker of Slack message JSON, from Slack's documented limits (what an incoming webhook
takes; Block Kit reference, https://api.slack.com/reference/block-kit):

- a message: `text` (a string) and/or `blocks` (at most 50); nothing else is used here;
- blocks of the types this project sends: `header` (a `plain_text` object, at most 150
  characters), `section` (`text` at most 3,000 characters and/or at most 10 `fields` of at most
  2,000), `context` (1 to 10 text elements), `divider`; `block_id` at most 255;
- a text object: `type` `plain_text` (optional `emoji`) or `mrkdwn` (optional `verbatim`), a
  non-empty `text`;
- mrkdwn and the top-level `text` escape `&`, `<`, `>` (as `&amp;`, `&lt;`, `&gt;`) except in
  Slack's own markup: `<@U…>` / `<@W…>` mentions, `<#C…>` channels, `<!here>` / `<!channel>` /
  `<!everyone>` / `<!subteam^…>`, `<!date^epoch^format|fallback>`, links `<url|label>`.

`problems(message)` lists what Slack would refuse or render wrongly; [] when none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID = 255
#: Slack truncates a message's `text` beyond this
MAX_TEXT = 40000

_MARKUP = re.compile(
    r"<(?:@[UW][A-Z0-9]+(?:\|[^<>]*)?"
    r"|#C[A-Z0-9]+(?:\|[^<>]*)?"
    r"|!(?:here|channel|everyone)"
    r"|!subteam\^[A-Z0-9]+(?:\|[^<>]*)?"
    r"|!date\^\d+\^[^<>|]+(?:\^[^<>|]+)?\|[^<>]+"
    r"|(?:https?|mailto):[^<>|\s]+(?:\|[^<>]*)?)>"
)
_ENTITY = re.compile(r"&(?:amp|lt|gt);")


def mrkdwn_problems(text: str, where: str) -> list[str]:
    """Unescaped `&`, `<`, `>` outside Slack's markup."""
    stripped = _ENTITY.sub("", _MARKUP.sub("", text))
    return [f"{where}: unescaped {c!r} (Slack wants &amp; &lt; &gt; outside its markup)"
            for c in sorted(set(stripped) & set("&<>"))]


def _text_object(value: Any, where: str, *, plain_only: bool = False, limit: int | None = None) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{where}: a text object is an object"]
    found = []
    kind = value.get("type")
    allowed = {"type", "text", "emoji"} if kind == "plain_text" else {"type", "text", "verbatim"}
    if kind not in ("plain_text", "mrkdwn") or (plain_only and kind != "plain_text"):
        found.append(f"{where}.type: {kind!r} (expected {'plain_text' if plain_only else 'plain_text or mrkdwn'})")
    found += [f"{where}.{key}: unknown key" for key in value if key not in allowed]
    text = value.get("text")
    if not isinstance(text, str) or not text:
        found.append(f"{where}.text: a non-empty string")
        return found
    if limit is not None and len(text) > limit:
        found.append(f"{where}.text: {len(text)} characters (at most {limit})")
    if kind == "mrkdwn":
        found += mrkdwn_problems(text, f"{where}.text")
    return found


def _block(block: Any, where: str) -> list[str]:
    if not isinstance(block, Mapping):
        return [f"{where}: a block is an object"]
    kind = block.get("type")
    found = []
    if "block_id" in block and (not isinstance(block["block_id"], str) or len(block["block_id"]) > MAX_BLOCK_ID):
        found.append(f"{where}.block_id: a string of at most {MAX_BLOCK_ID}")
    keys = {"header": {"type", "text", "block_id"}, "section": {"type", "text", "fields", "block_id"},
            "context": {"type", "elements", "block_id"}, "divider": {"type", "block_id"}}
    if kind not in keys:
        return [*found, f"{where}.type: {kind!r} is not a block this checker knows"]
    found += [f"{where}.{key}: unknown key for a {kind} block" for key in block if key not in keys[kind]]
    if kind == "header":
        found += _text_object(block.get("text"), f"{where}.text", plain_only=True, limit=MAX_HEADER)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            found.append(f"{where}: a section has text or fields")
        if "text" in block:
            found += _text_object(block["text"], f"{where}.text", limit=MAX_SECTION_TEXT)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
                found.append(f"{where}.fields: 1 to {MAX_FIELDS} text objects")
            else:
                for i, item in enumerate(fields):
                    found += _text_object(item, f"{where}.fields[{i}]", limit=MAX_FIELD_TEXT)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            found.append(f"{where}.elements: 1 to {MAX_CONTEXT_ELEMENTS} elements")
        else:
            for i, item in enumerate(elements):
                found += _text_object(item, f"{where}.elements[{i}]")
    return found


def problems(message: Any) -> list[str]:
    """What is wrong with `message` (parsed JSON) as a Slack incoming-webhook message."""
    if not isinstance(message, Mapping):
        return ["a message is a JSON object"]
    found = [f"{key}: not a key of a webhook message" for key in message
             if key not in ("text", "blocks", "mrkdwn", "unfurl_links", "unfurl_media", "thread_ts")]
    text, blocks = message.get("text"), message.get("blocks")
    if not text and not blocks:
        found.append("a message has text or blocks")
    if text is not None:
        if not isinstance(text, str):
            found.append("text: a string")
        else:
            if len(text) > MAX_TEXT:
                found.append(f"text: {len(text)} characters (Slack truncates beyond {MAX_TEXT})")
            found += mrkdwn_problems(text, "text")
    if blocks is not None:
        if not isinstance(blocks, list) or not 1 <= len(blocks) <= MAX_BLOCKS:
            found.append(f"blocks: 1 to {MAX_BLOCKS} blocks")
        else:
            for i, block in enumerate(blocks):
                found += _block(block, f"blocks[{i}]")
    return found
