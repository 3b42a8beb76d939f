"""The fuzz campaign: every parser of `targets.CHECKS` gets `DEVICEGATE_FUZZ_EXAMPLES`
inputs — no crash, no hang, no 5xx. `make fuzz` runs 100,000 a parser; `make test` a short
run.

Two generators share the count. Hypothesis (up to 2,000 a parser: it shrinks what fails to
a minimal input, and at high counts its bookkeeping costs more than most parsers) draws
well-formed inputs mutated or bytes and text from nothing; a seeded mutator makes the rest
at a fraction of the cost — deletions, insertions, flipped bytes, repeats and splices of the
seeds, as atheris' mutator does without its coverage guidance, and values of `name=value`
pairs swapped for edge cases. `DEVICEGATE_FUZZ_SEED` picks another sequence (the default is
fixed, so a run is reproducible)."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz import targets
from tests.fuzz.conftest import BUDGET, EXAMPLES, FUZZ, fuzzing

BY_HYPOTHESIS = min(EXAMPLES // 2, 2000)
SEED = int(os.environ.get("DEVICEGATE_FUZZ_SEED", "20261206"))


@st.composite
def mutated(draw: st.DrawFn, name: str) -> bytes:
    """A seed of parser `name` with up to eight random edits."""
    data = bytearray(draw(st.sampled_from(targets.seeds()[name])))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.integers(0, 4))
        at = draw(st.integers(0, len(data)))
        if op == 0:
            del data[at : at + draw(st.integers(1, 64))]
        elif op == 1:
            data[at:at] = draw(st.binary(max_size=24))
        elif op == 2 and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == 3:
            data[at:at] = data[max(0, at - 64) : at] * draw(st.integers(1, 4))
        else:  # a line or token from elsewhere in the seed
            start = draw(st.integers(0, len(data)))
            data[at:at] = data[start : start + draw(st.integers(1, 80))]
    return bytes(data)


def inputs(name: str) -> st.SearchStrategy[bytes]:
    texty = st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400
    ).map(lambda s: s.encode("utf-8"))
    return st.one_of(mutated(name), st.binary(max_size=600), texty)


#: bytes a mutation inserts: the structure characters of the formats, and anything; "²"
#: and "①" pass `str.isdigit` but not `int`, "٣" passes both (plain and percent-encoded)
INTERESTING = [b"\x00", b"\xff", b"\n", b"\r\n", b'"', b"\\", b"{", b"}", b"[", b"]", b":",
               b"=", b"%", b"(", b")", b"<", b">", b"&", b"#", b"-", b"0", b"9" * 40,
               b"\xc3\xa9", b"\xf0\x9f\x98\x80", b"\xed\xa0\x80", b" " * 30,
               b"\xc2\xb2", b"%C2%B2", b"\xe2\x91\xa0", b"\xd9\xa3"]  # fmt: skip


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    """One input from the seeds: up to 16 edits of one of them."""
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 16)):
        op = rng.randrange(8)
        at = rng.randint(0, len(data))
        if op == 0:
            del data[at : at + rng.randint(1, 64)]
        elif op == 1:
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        elif op == 2 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 3:
            data[at:at] = rng.choice(INTERESTING)
        elif op == 4:
            data[at:at] = data[max(0, at - 64) : at] * rng.randint(1, 8)
        elif op == 5:
            other = rng.choice(seeds)
            start = rng.randint(0, len(other))
            data[at:at] = other[start : start + rng.randint(1, 200)]
        elif op == 6:
            data = data[: rng.randint(0, len(data))]  # cut short
        else:
            data = swap_value(rng, data)
    return bytes(data)


#: what replaces a value: the tokens above, numbers at and past the usual bounds
VALUES = [*INTERESTING, b"", b"-1", b"0", b"1" * 19, b"9" * 25, b"1e9", b"0x10", b"+7", b"7.5"]


def swap_value(rng: random.Random, data: bytearray) -> bytearray:
    """The value of one `name=value` pair (a query, a form, an attribute line) replaced:
    where parsers turn text into numbers, dates and names."""
    equals = [i for i, byte in enumerate(data) if byte == ord("=")]
    if not equals:
        return data
    start = end = rng.choice(equals) + 1
    while end < len(data) and data[end] not in b"&;\n\r ":
        end += 1
    data[start:end] = rng.choice(VALUES)
    return data


@pytest.mark.timeout(BUDGET)
@pytest.mark.parametrize("name", sorted(targets.CHECKS))
def test_fuzz_hypothesis(name: str) -> None:
    check = targets.CHECKS[name]
    targets.seeds()  # built before hypothesis runs: building them draws random file names

    @settings(FUZZ, max_examples=max(1, BY_HYPOTHESIS))
    @given(data=inputs(name))
    def run(data: bytes) -> None:
        with fuzzing(name, data):
            check(data)

    run()


@pytest.mark.timeout(BUDGET)
@pytest.mark.parametrize("name", sorted(targets.CHECKS))
def test_fuzz_mutations(name: str) -> None:
    check = targets.CHECKS[name]
    seeds = targets.seeds()[name]
    rng = random.Random(f"{SEED}:{name}")
    for _ in range(EXAMPLES - max(1, BY_HYPOTHESIS)):
        data = mutate(rng, seeds)
        with fuzzing(name, data):
            check(data)
