"""Guard globs (gitignore semantics) and git's porcelain status, without git."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.globmatch import StatusEntry, first_match, glob_match, parse_porcelain

GLOB_CASES = [
    # a trailing /** is everything inside, at any depth, anchored to the workdir
    ("tests/**", "tests/test_a.py", True),
    ("tests/**", "tests/unit/deep/test_x.py", True),
    ("tests/**", "tests", False),
    ("tests/**", "src/tests/test_a.py", False),
    ("tests/**", "tests_old/test_a.py", False),
    # no slash: the name at any depth
    ("SPRINT.md", "SPRINT.md", True),
    ("SPRINT.md", "docs/SPRINT.md", True),
    ("SPRINT.md", "SPRINT.md.bak", False),
    ("SPRINT.md", "sprint.md", False),
    ("./SPRINT.md", "SPRINT.md", True),
    # a leading slash only anchors
    ("/SPRINT.md", "SPRINT.md", True),
    ("/SPRINT.md", "docs/SPRINT.md", False),
    # a slash in the middle anchors; * stops at /
    ("src/*.py", "src/app.py", True),
    ("src/*.py", "src/.hidden.py", True),
    ("src/*.py", "src/sub/app.py", False),
    ("src/*.py", "lib/src/app.py", False),
    ("src/*.py", "src/app.pyc", False),
    # leading **/ is any depth, including none; a matching folder protects its contents
    ("**/secret*", "secret.txt", True),
    ("**/secret*", "a/b/secret.key", True),
    ("**/secret*", "a/secrets/notes.txt", True),
    ("**/secret*", "a/mysecret", False),
    # /**/ in the middle is zero or more folders
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    ("a/**/b", "x/a/b", False),
    # ** inside a name is a plain *
    ("a**b", "axxb", True),
    ("a**b", "ax/xb", False),
    # a folder name protects everything below it, at any depth
    ("tests", "tests/test_a.py", True),
    ("tests", "src/tests/test_a.py", True),
    ("tests", "tests.py", False),
    # a trailing slash: folders only
    ("build/", "build", False),
    ("build/", "build/out.o", True),
    ("build/", "x/build/out.o", True),
    # ?, classes, escapes
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file10.txt", False),
    ("[abc].md", "b.md", True),
    ("[!abc].md", "b.md", False),
    ("[!abc].md", "d.md", True),
    ("[a-c].md", "d.md", False),
    ("[a-c].md", "c.md", True),
    ("[]].md", "].md", True),
    ("\\*.md", "*.md", True),
    ("\\*.md", "x.md", False),
    ("foo[", "foo[", True),
    # everything, nothing
    ("*", "any/path/at/all", True),
    ("**", "any/path", True),
    ("", "x", False),
    ("/", "x", False),
    ("!SPRINT.md", "SPRINT.md", False),
    ("!SPRINT.md", "!SPRINT.md", True),
    # a manifest's globs have no comments, and trailing spaces are part of the name
    ("#notes", "#notes", True),
    ("notes ", "notes ", True),
    ("notes ", "notes", False),
    ("trailing\\", "trailing\\", False),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), GLOB_CASES)
def test_glob_match(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(pattern, path) is expected


def test_first_match_returns_the_first_glob_that_matches() -> None:
    assert first_match(["src/**", "SPRINT.md", "*.md"], "docs/SPRINT.md") == "SPRINT.md"
    assert first_match(["src/**"], "docs/SPRINT.md") is None


NAME = st.text(st.characters(codec="utf-8", exclude_characters="/\\*?[]!\0"), min_size=1).filter(
    lambda name: not name[-1].isspace() or name[-1] == " "  # other trailing whitespace is refused
)
PATHS = st.lists(NAME.filter(lambda n: n not in (".", "..")), min_size=1, max_size=5).map("/".join)


@given(st.text(max_size=30), st.text(max_size=30))
def test_glob_match_never_raises(pattern: str, path: str) -> None:
    glob_match(pattern, path)


@given(PATHS)
def test_an_anchored_literal_path_matches_itself_and_what_is_below(path: str) -> None:
    assert glob_match("/" + path, path)
    assert glob_match("/" + path, path + "/child")
    assert glob_match("**", path)


@given(PATHS, PATHS)
def test_a_trailing_double_star_matches_only_inside(folder: str, rest: str) -> None:
    assert glob_match(folder + "/**", f"{folder}/{rest}")
    assert not glob_match(folder + "/**", folder)


# -- porcelain -----------------------------------------------------------------------------------


def test_parse_porcelain_reads_codes_paths_and_rename_sources() -> None:
    data = (
        b" M src/app.py\0"
        b"?? tests/new file.py\0"
        b"R  tests/renamed.py\0tests/old.py\0"
        b"D  tests/gone.py\0"
        b"!! build/out.o\0"
        b"AM SPRINT.md\0"
        b"?? caf\xc3\xa9/\xff.txt\0"
    )
    assert parse_porcelain(data) == [
        StatusEntry(" ", "M", "src/app.py"),
        StatusEntry("?", "?", "tests/new file.py"),
        StatusEntry("R", " ", "tests/renamed.py", "tests/old.py"),
        StatusEntry("D", " ", "tests/gone.py"),
        StatusEntry("A", "M", "SPRINT.md"),
        StatusEntry("?", "?", "café/\udcff.txt"),
    ]


def test_parse_porcelain_of_a_clean_tree_is_empty() -> None:
    assert parse_porcelain(b"") == []
