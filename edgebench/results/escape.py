"""Text that other tools render: a Markdown cell or code span (GitHub renders inline HTML in both a PR
comment and ``$GITHUB_STEP_SUMMARY``) and a CSV cell (a spreadsheet runs one that starts like a formula).

A model or file name is the user's text; these make sure it is shown, never run."""

from __future__ import annotations

import html
import re

#: what a spreadsheet reads as the start of a formula (OWASP "CSV injection"), with the control characters
#: some of them also honour
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def md_text(value: object) -> str:
    """Plain text for Markdown: HTML escaped, ``|`` escaped (a table cell), newlines folded to spaces."""
    text = html.escape("" if value is None else str(value), quote=False)
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def md_code(value: object) -> str:
    """A Markdown code span that holds ``value`` whatever backticks it has: a fence one backtick longer
    than its longest run (CommonMark), padded with a space where the text starts or ends with a backtick.
    Newlines fold to spaces (a blank line would end the span) and ``|`` is escaped (it would end a table cell)."""
    text = ("" if value is None else str(value)).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def csv_cell(value: object) -> object:
    """A CSV value a spreadsheet shows as text: a string that starts with ``= + - @`` (or a tab or carriage
    return) gets a leading ``'``, as OWASP recommends. Numbers stay numbers (a negative one is no formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
