"""`directory.names.normalise_name`: its ASCII fast path gives exactly rule 1's form."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from devicegate.directory.names import normalise_name


def rule_one(name: str) -> str:
    """Rule 1 as written: NFC, surrounding white space and dots removed, case folded."""
    return unicodedata.normalize("NFC", name).strip().strip(".").strip().casefold()


@settings(max_examples=3000)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_the_fast_path_is_rule_one(name: str) -> None:
    assert normalise_name(name) == rule_one(name)


def test_forms_of_one_name() -> None:
    assert normalise_name(" I.Petrov@MinPromTorg.example. ") == "i.petrov@minpromtorg.example"
    assert normalise_name("\tSTRASSE\x1f") == "strasse"
    assert normalise_name("Straße") == "strasse"  # casefold, not lower
    assert normalise_name("e\u0301") == "\u00e9"  # NFC
