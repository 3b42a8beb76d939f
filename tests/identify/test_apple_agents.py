"""The guard of the Apple agent rules: which tokens name a platform Apple hardware never runs."""

from __future__ import annotations

import pytest

from devicegate.identify.apple_agents import non_apple

PLATFORM_TOKENS = [
    "Android",
    "android",
    "Adr",
    "HarmonyOS",
    "OpenHarmony",
    "Windows",
    "windows",
    "Win32",
    "Win64",
    "WOW64",
    "Sailfish",
    "Tizen",
    "KaiOS",
    "BlackBerry",
    "BB10",
    "SymbianOS",
    "Symbian",
    "webOS",
    "Linux",
    "linux",
    "X11",
    "CrOS",
]


@pytest.mark.parametrize("token", PLATFORM_TOKENS)
def test_each_platform_token_is_found_standing_alone(token: str) -> None:
    assert non_apple(f"ExampleApp/1.0 ({token}; x)") == token
    assert non_apple(f"ExampleApp/1.0 {token} 13") == token


@pytest.mark.parametrize(
    "ua",
    [
        "Outlook-iOS-Android/1.0",  # a product's name
        "ExampleApp/1.0 (x86_64-unknown-linux-gnu)",  # inside a target triple
        "ExampleApp/1.0 (like Android 4.4)",  # a comparison
        "ExampleAndroidHelper/1.0",  # inside a word
        "ExampleApp/1.0 (iPhone; iOS 17.2)",
    ],
)
def test_tokens_inside_names_or_comparisons_are_not_platforms(ua: str) -> None:
    assert non_apple(ua) is None


def test_linux_desktop_tokens_can_be_tolerated() -> None:
    assert non_apple("ExampleApp/1.0 (X11; Linux x86_64)", linux=False) is None
    assert non_apple("ExampleApp/1.0 (X11; Linux x86_64; Android)", linux=False) == "Android"
