"""The docs hold: every `edgebench ...` command the README, docs/ and examples/ name exists (its --help runs, in one
process through Click's CliRunner), every option cli.md lists exists on its command, and every relative link
resolves to a file (and to a heading, for a #anchor). Each checker is also run on a broken page, so that it is
seen to fail. No torch import: the CLI resolves its commands without one."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").rglob("*.md")])
README_MAX_LINES = 200

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_COMMAND = re.compile(r"(?<![\w./-])edgebench((?:[ \t]+[^\s`]+)+)")


def _split(text: str) -> tuple[list[str], list[str]]:
    """(code, prose): the lines of fenced blocks plus the inline code spans, and the prose paragraphs (joined
    into one line each, as a span or a link may wrap) with the inline code removed."""
    code: list[str] = []
    paragraphs: list[list[str]] = [[]]
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            paragraphs.append([])
        elif fenced:
            code.append(line)
        elif not line.strip() or _HEADING.match(line) or line.lstrip().startswith(("|", "- ", "* ")) \
                or re.match(r"\s*\d+\. ", line):
            paragraphs.append([line])  # a blank line, heading, table row or list item starts a new paragraph
        else:
            paragraphs[-1].append(line)
    prose = []
    for paragraph in paragraphs:
        joined = " ".join(line.strip() for line in paragraph)
        code.extend(m.group(2) for m in _INLINE_CODE.finditer(joined))
        prose.append(_INLINE_CODE.sub("", joined))
    return code, prose


def command_mentions(text: str, main: click.Group) -> list[tuple[tuple[str, ...], tuple[str, ...], str]]:
    """Every `edgebench WORD [SUB] ...` in code: (command path, the --options on the same line, the line).
    A path names a missing command when its first word is no command of ``main``, or when a group's next
    word is no subcommand of it. Placeholders (COMMAND, [OPTIONS], -v) are not commands."""
    found = []
    for line in _split(text)[0]:
        for m in _COMMAND.finditer(line):
            words = m.group(1).split()
            head = words[0]
            if not re.fullmatch(r"[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*", head):
                continue  # an option, a placeholder, a path or a sentence's punctuation
            command = main.commands.get(head)
            rest = words[1:]
            if isinstance(command, click.Group) and rest and re.fullmatch(r"[a-z][a-z0-9|-]*", rest[0]):
                for sub in rest[0].split("|"):
                    found.append(((head, sub), (), line))
                continue
            options = []
            for word in rest:
                if word in ("|", "||", "&&", ";", "#") or word.startswith("#"):
                    break
                flag = re.match(r"\[?(--[a-z][a-z0-9-]*)", word)
                if flag:
                    options.append(flag.group(1))
            for alternative in head.split("|"):
                found.append(((alternative,), tuple(options), line))
    return found


def missing_commands(text: str, main: click.Group) -> list[str]:
    """What `command_mentions` names that the CLI lacks: a command, a subcommand, or an option."""
    problems = []
    for path, options, line in command_mentions(text, main):
        command: click.Command | None = main
        for word in path:
            command = command.commands.get(word) if isinstance(command, click.Group) else None
            if command is None:
                problems.append(f"no command `edgebench {' '.join(path)}`: {line.strip()}")
                break
        else:
            known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            problems += [f"`edgebench {' '.join(path)}` has no {o}: {line.strip()}"
                         for o in options if o not in known and o != "--help"]
    return problems


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: formatting and punctuation dropped, lower case, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else _HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(page: Path) -> list[str]:
    """Every relative link of ``page`` (outside code) whose file, or whose #anchor in a Markdown file, is missing."""
    problems = []
    for line in _split(page.read_text(encoding="utf-8"))[1]:
        for m in _LINK.finditer(line):
            target = m.group(1)
            if _SCHEME.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (page.parent / file_part).resolve() if file_part else page
            if not resolved.exists():
                problems.append(f"{page.name}: {target}: no such file")
            elif anchor and resolved.is_file() and resolved.suffix == ".md" and anchor not in anchors(resolved):
                problems.append(f"{page.name}: {target}: no heading #{anchor} in {resolved.name}")
    return problems


@pytest.fixture(scope="module")
def main() -> click.Group:
    from edgebench.cli import main
    return main


def test_the_readme_guides_and_stays_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; reference belongs in docs/"
    text = "\n".join(lines)
    for needed in ("make setup", "make test", "make check", "docs/cli.md", "docs/concepts.md"):
        assert needed in text


def test_every_page_is_reachable_from_the_readme():
    """Each page under docs/ is linked from README.md or from a page the README links to."""
    linked = {ROOT / "README.md"}
    todo = [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        for line in _split(page.read_text(encoding="utf-8"))[1]:
            for m in _LINK.finditer(line):
                file_part = m.group(1).partition("#")[0]
                if not file_part or _SCHEME.match(file_part):
                    continue
                target = (page.parent / file_part).resolve()
                if target.suffix == ".md" and target.is_file() and target not in linked:
                    linked.add(target)
                    todo.append(target)
    assert [p.relative_to(ROOT) for p in PAGES if p.resolve() not in linked] == []


def test_every_relative_link_resolves():
    problems = [problem for page in PAGES for problem in broken_links(page)]
    assert problems == []


def test_every_command_in_the_readme_and_docs_exists(main):
    mentions = {path for page in PAGES for path, _, _ in command_mentions(page.read_text(encoding="utf-8"), main)}
    problems = [problem for page in PAGES for problem in missing_commands(page.read_text(encoding="utf-8"), main)]
    assert problems == []
    # Every top-level command is documented somewhere, and each named path answers --help in this process.
    assert {path[0] for path in mentions} >= set(main.commands), set(main.commands) - {p[0] for p in mentions}
    runner = CliRunner()
    for path in sorted(mentions):
        result = runner.invoke(main, [*path, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_every_option_cli_md_lists_exists(main):
    """cli.md gives each command's options on an `Options:` paragraph under the command's heading."""
    command: click.Command | None = None
    in_options = False
    checked = 0
    problems = []
    for line in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            command = main
            for word in heading.group(2).split():
                command = command.commands.get(word) if isinstance(command, click.Group) else None
            in_options = False
            continue
        if line.startswith("Options:"):
            assert command is not None and not isinstance(command, click.Group), f"{line!r} under no command"
            in_options = True
        elif not (in_options and line.startswith("`--")):
            in_options = False
            continue
        known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        for option in re.findall(r"`(--[a-z][a-z0-9-]*)`", line):
            checked += 1
            if option not in known:
                problems.append(f"{command.name}: {option}")
    assert problems == []
    assert checked > 100  # the Options: paragraphs were found


def test_the_checkers_fail_on_a_broken_page(tmp_path, main):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# A heading\n")
    page.write_text(
        "# Title\n\n"
        "[ok](there.md) [ok anchor](there.md#a-heading) [self](#title) [web](https://example.com/x)\n"
        "[gone](missing.md) [bad anchor](there.md#no-such-heading) [bad self](#nowhere)\n"
        "`[not a link](inside-code.md)`\n\n"
        "```bash\n"
        "edgebench run --runtime ort --model m   # exists\n"
        "edgebench frobnicate --fast\n"
        "edgebench history show --model m\n"
        "edgebench history explode\n"
        "edgebench run --no-such-option\n"
        "```\n"
        "Prose says edgebench measures; `edgebench COMMAND --help` is a placeholder.\n")
    assert broken_links(page) == [
        "page.md: missing.md: no such file",
        "page.md: there.md#no-such-heading: no heading #no-such-heading in there.md",
        "page.md: #nowhere: no heading #nowhere in page.md",
    ]
    problems = missing_commands(page.read_text(), main)
    assert [p.split(":")[0] for p in problems] == [
        "no command `edgebench frobnicate`",
        "no command `edgebench history explode`",
        "`edgebench run` has no --no-such-option",
    ]


def test_slugs_follow_github():
    assert slug("The recipe follows the CPU's INT8 class") == "the-recipe-follows-the-cpus-int8-class"
    assert slug("INT8: recipes, and what they learned") == "int8-recipes-and-what-they-learned"
    assert slug("`--max-drop` and friends") == "--max-drop-and-friends"
