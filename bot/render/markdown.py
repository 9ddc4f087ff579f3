"""The postmortem as Markdown: for the CLI, wikis, and the initial text of the Edit modal."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment

from bot.analysis.models import Draft, EditableSection
from bot.render.context import environment, page_context, quote_line
from bot.render.options import RenderOptions
from bot.render.text import LinkPart, clean, is_link_url, plain, split_links

TEMPLATE = "postmortem.md.j2"
# A "<" that could open raw HTML (a tag, a comment, CDATA): Markdown renderers pass raw HTML through, so a
# quoted "<script>" or "<img onerror=…>" would run where the Markdown is shown. As "&lt;" it reads as "<".
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")
# An "&" that starts an entity reference ("&lt;", "&#60;"): escaped, so typed text reads as typed.
_ENTITY_START = re.compile(r"&(?=#?[A-Za-z0-9]{1,32};)")


def _url(url: str) -> str:
    # Characters that would end a Markdown link target or a table cell early.
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("|", "%7C")


def _text(text: str) -> str:
    return _HTML_START.sub("&lt;", _ENTITY_START.sub("&amp;", text))


def _label(text: str) -> str:
    return _text(text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]"))


def md(text: object, url: str | None = None) -> str:
    """Text with its "[t](url)" links kept as Markdown links (only http(s)/mailto); with `url`, all of it a link."""
    value = clean(str(text))
    if url is not None:
        return f"[{_label(plain(value))}]({_url(url)})" if is_link_url(url) else _text(value)
    return "".join(
        f"[{_label(part.text)}]({_url(part.url)})" if isinstance(part, LinkPart) else _text(part.text)
        for part in split_links(value)
    )


def cell(text: object, url: str | None = None) -> str:
    """Text for one Markdown table cell: pipes escaped, newlines as <br>."""
    return md(text, url).strip().replace("|", "\\|").replace("\n", "<br>")


def item(text: object, url: str | None = None) -> str:
    """Text for a list item: continuation lines indented under the bullet."""
    return md(text, url).strip().replace("\n", "\n  ")


def line(text: object, url: str | None = None) -> str:
    """Text for a heading or any one-line spot: whitespace runs, newlines included, become one space."""
    return " ".join(md(text, url).split())


def block(text: object) -> str:
    """A person's edit: their Markdown as written, minus control characters."""
    return clean(str(text)).strip()


_FILTERS = {"md": md, "cell": cell, "item": item, "line": line, "block": block}


@lru_cache(maxsize=8)
def _environment(templates_dir: Path | None) -> Environment:
    return environment(templates_dir=templates_dir, filters=_FILTERS)


def render_markdown(draft: Draft, *, options: RenderOptions) -> str:
    template = _environment(options.templates_dir).get_template(TEMPLATE)
    return template.render(page_context(draft, options=options))


def _one_line(text: str) -> str:
    return " ".join(clean(text).split())


def editable_markdown(draft: Draft, section: EditableSection) -> str:
    """A section as a person edits it: their edit, else the computed section as Markdown lines."""
    if section in draft.edits:
        return clean(draft.edits[section])
    match section:
        case EditableSection.SUMMARY:
            return clean(draft.summary)
        case EditableSection.IMPACT:
            return clean(draft.impact)
        case EditableSection.CONTRIBUTING_FACTORS:
            return "\n".join(f"- {_one_line(quote_line(q))}" for q in draft.contributing_factors)
        case EditableSection.ACTION_ITEMS:
            return "\n".join(
                f"- [{_one_line(a.owner)}] {_one_line(a.text)}" if a.owner else f"- {_one_line(a.text)}"
                for a in draft.action_items
            )
        case EditableSection.LESSONS_LEARNED:
            lessons = draft.lessons
            groups = [
                ("Went well", lessons.went_well),
                ("Went wrong", lessons.went_wrong),
                ("Lucky", lessons.lucky),
            ]
            return "\n\n".join(
                f"{label}:\n" + "\n".join(f"- {_one_line(quote_line(q))}" for q in quotes)
                for label, quotes in groups
                if quotes
            )
    raise ValueError(f"not an editable section: {section}")
