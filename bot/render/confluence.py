"""The postmortem in Confluence storage format (XHTML with ac:/ri: macros).

Every value reaches the page through `xml_text`: the environment's `finalize` escapes whatever a
template prints unless a filter below already built it as safe markup from escaped parts. So no chat
text, name or title can open a tag, close a CDATA section or start a macro, and the page always parses.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment
from markupsafe import Markup

from bot.analysis.models import Draft
from bot.render.context import environment, page_context
from bot.render.options import RenderOptions
from bot.render.text import LinkPart, clean, is_link_url, plain, split_links, xml_text

TEMPLATE = "postmortem.confluence.xhtml.j2"
STATUS_COLOURS = {"draft": "Grey", "in review": "Yellow", "published": "Green"}
_BULLET = re.compile(r"^[-*+]\s+(.*)$")
_HEADING = re.compile(r"^#{1,6}\s+(.*)$")


def _escape(value: object) -> Markup:
    """The `finalize` of the environment: escape anything not already built as markup here."""
    if isinstance(value, Markup):
        return value
    return Markup("" if value is None else xml_text(value))


def _anchor(label: str, url: str) -> str:
    return f'<a href="{xml_text(url)}">{xml_text(label)}</a>'


def _lines(text: str) -> str:
    return "<br />".join(xml_text(line) for line in text.split("\n"))


def rich(text: object, url: str | None = None) -> Markup:
    """Escaped text, its "[t](url)" links as <a href> (http(s)/mailto only), newlines as <br />.
    With `url`, all of the text becomes one link."""
    value = clean(str(text))
    if url is not None:
        return Markup(_anchor(plain(value), url) if is_link_url(url) else _lines(value))
    return Markup(
        "".join(
            _anchor(part.text, part.url) if isinstance(part, LinkPart) else _lines(part.text)
            for part in split_links(value)
        )
    )


def md_block(text: object) -> Markup:
    """A person's Markdown edit as XHTML: paragraphs, '- ' bullet lists, '#' headings, links."""
    out: list[str] = []
    paragraph: list[str] = []
    bullets: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append("<p>" + "<br />".join(rich(line) for line in paragraph) + "</p>")
            paragraph.clear()
        if bullets:
            out.append("<ul>" + "".join(f"<li>{rich(item)}</li>" for item in bullets) + "</ul>")
            bullets.clear()

    for line in clean(str(text)).split("\n"):
        stripped = line.strip()
        bullet, heading = _BULLET.match(stripped), _HEADING.match(stripped)
        if not stripped:
            flush()
        elif bullet:
            if paragraph:
                flush()
            bullets.append(bullet.group(1))
        elif bullets and line[:1] in (" ", "\t"):
            bullets[-1] += "\n" + stripped  # a continuation line of the last bullet
        elif heading:
            flush()
            out.append(f"<h3>{rich(heading.group(1))}</h3>")
        else:
            if bullets:
                flush()
            paragraph.append(stripped)
    flush()
    return Markup("".join(out))


_FILTERS = {"x": _escape, "rich": rich, "md_block": md_block}


@lru_cache(maxsize=8)
def _environment(templates_dir: Path | None) -> Environment:
    return environment(templates_dir=templates_dir, filters=_FILTERS, finalize=_escape)


def render_confluence(draft: Draft, *, options: RenderOptions) -> str:
    context = page_context(draft, options=options)
    context["status_colour"] = STATUS_COLOURS.get(options.status.lower(), "Blue")
    return _environment(options.templates_dir).get_template(TEMPLATE).render(context)
