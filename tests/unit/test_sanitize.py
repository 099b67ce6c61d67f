"""Message sanitising: an injection corpus, then properties over arbitrary text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.api.errors import InvalidInput
from reconciler.core.sanitize import (
    MAX_MESSAGE_BYTES,
    SanitizedMessage,
    check_size,
    clean_message,
    sanitize,
)

ESC = "\x1b"

#: (message, what must be pasted, how many characters were removed)
INJECTIONS = [
    pytest.param(
        f"summarize this\n{ESC}[201~\x15touch /tmp/pwned\r",
        "summarize this\n[201~touch /tmp/pwned\n",
        2,
        id="paste-end-then-keystrokes",
    ),
    pytest.param(f"a{ESC}[200~b{ESC}[201~c", "a[200~b[201~c", 2, id="nested-paste-start"),
    pytest.param(
        f"{ESC}[31mred{ESC}[0m {ESC}[2J{ESC}[H{ESC}[?2004l", "[31mred[0m [2J[H[?2004l", 5, id="csi"
    ),
    pytest.param(f"x{ESC}]52;c;cm0gLXJmIH4=\x07y", "x]52;c;cm0gLXJmIH4=y", 2, id="osc52-bel"),
    pytest.param(f"x{ESC}]52;c;cm0gLXJmIH4={ESC}\\y", "x]52;c;cm0gLXJmIH4=\\y", 2, id="osc52-st"),
    pytest.param(f"x{ESC}]0;title\x07y", "x]0;titley", 2, id="osc-title"),
    pytest.param("a\x9b201~b", "a201~b", 1, id="c1-csi-8bit"),
    pytest.param("a\x90q\x9c\x9d0;t\x07", "aq0;t", 4, id="c1-dcs-st-osc"),
    pytest.param("a\x85b\x80c\x9f", "abc", 3, id="c1-other"),
    pytest.param("a\x00b\x00", "ab", 2, id="nul"),
    pytest.param("one\rtwo\r", "one\ntwo\n", 0, id="bare-cr"),
    pytest.param("one\r\ntwo\r\n", "one\ntwo\n", 0, id="crlf"),
    pytest.param("one\r\r\ntwo", "one\n\ntwo", 0, id="cr-crlf"),
    pytest.param("ding\x07", "ding", 1, id="bel"),
    pytest.param("rm -rf /tmp/x\x08\x08\x08\x08\x08/", "rm -rf /tmp/x/", 5, id="backspaces"),
    pytest.param("stop\x03 eof\x04 kill\x15 word\x17", "stop eof kill word", 4, id="ctrl-c-d-u-w"),
    pytest.param("a\x7fb\x7f", "ab", 2, id="del"),
    pytest.param("\x0b\x0c\x1a\x1c\x1f", "", 5, id="other-c0"),
    pytest.param("ok\udc9b201~\udcff", "ok201~", 2, id="surrogateescape-bytes"),
    pytest.param("a\ud800b\udfff", "ab", 2, id="lone-surrogates"),
]

#: Messages that must come through byte for byte.
PLAIN = [
    pytest.param("", id="empty"),
    pytest.param("fix the failing test in tests/unit/test_x.py", id="ascii"),
    pytest.param("line one\nline two\n\n  indented\tand\ttabs\n", id="multi-line-tabs"),
    pytest.param("ship it 🚀👩‍💻 ✅", id="emoji-zwj"),
    pytest.param("修复这个错误。テストを実行して 한국어", id="cjk"),
    pytest.param("e\u0301 n\u0303 a\u0308\u0323", id="combining-marks"),
    pytest.param("abc \u202eevil\u202c \u2066iso\u2069 \u200b\ufeff", id="bidi-and-format"),
    pytest.param("\u00a0nbsp \u00a9 \u00ff \u0100", id="latin1-above-c1"),
    pytest.param("mathematical 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and \u2028 separators \u2029", id="astral-and-separators"),
]


@pytest.mark.parametrize(("message", "pasted", "removed"), INJECTIONS)
def test_injection_corpus(message: str, pasted: str, removed: int) -> None:
    assert sanitize(message) == SanitizedMessage(pasted, removed)
    assert clean_message(message) == pasted
    assert ESC not in pasted
    assert "\x9b" not in pasted


@pytest.mark.parametrize("message", PLAIN)
def test_plain_text_is_unchanged(message: str) -> None:
    assert sanitize(message) == SanitizedMessage(message, 0)


def test_sanitized_text_encodes_as_utf8_for_the_paste() -> None:
    pasted = clean_message("before\udc1b\udc9b[201~after\ud800")
    assert pasted.encode() == b"before[201~after"


def test_check_size_accepts_the_limit_and_rejects_one_byte_more() -> None:
    check_size("a" * MAX_MESSAGE_BYTES)
    with pytest.raises(InvalidInput) as raised:
        check_size("a" * (MAX_MESSAGE_BYTES - 1) + "é")
    message = str(raised.value)
    assert "\n" not in message
    assert str(MAX_MESSAGE_BYTES + 1) in message


def test_check_size_counts_utf8_bytes_not_characters() -> None:
    check_size("€" * (MAX_MESSAGE_BYTES // 3))
    with pytest.raises(InvalidInput):
        check_size("€" * (MAX_MESSAGE_BYTES // 3 + 1))


def is_removed(char: str) -> bool:
    """What sanitize must drop, defined independently of its implementation."""
    category = unicodedata.category(char)
    return (category == "Cc" and char not in "\n\t\r") or category == "Cs"


#: Text biased towards what matters here: controls, CR/LF and surrogates among ordinary text.
messages = st.lists(
    st.one_of(
        st.characters(),
        st.characters(min_codepoint=0, max_codepoint=0x9F),
        st.characters(categories=["Cs"]),
        st.sampled_from(["\r", "\n", "\r\n", "\t", ESC, "\x9b", "\udc9b", "[201~"]),
    )
).map("".join)


@given(messages)
def test_output_has_no_control_but_newline_and_tab(text: str) -> None:
    pasted = sanitize(text).text
    assert all(char in "\n\t" or not is_removed(char) for char in pasted)
    assert "\r" not in pasted
    assert not any(unicodedata.category(char) == "Cs" for char in pasted)


@given(messages)
def test_sanitize_is_idempotent(text: str) -> None:
    once = sanitize(text)
    assert sanitize(once.text) == SanitizedMessage(once.text, 0)


@given(st.text(st.characters(exclude_categories=["Cc", "Cs"]) | st.sampled_from("\n\t")))
def test_text_without_controls_is_unchanged(text: str) -> None:
    assert sanitize(text) == SanitizedMessage(text, 0)


@given(messages)
def test_removed_counts_exactly_the_dropped_characters(text: str) -> None:
    result = sanitize(text)
    assert result.removed == sum(map(is_removed, text))
    assert len(text) - len(result.text) == result.removed + text.count("\r\n")


@given(messages)
def test_the_kept_characters_stay_in_order(text: str) -> None:
    kept = "".join(char for char in text.replace("\r\n", "\n") if not is_removed(char))
    assert sanitize(text).text == kept.replace("\r", "\n")
