"""Property tests have no per-example deadline (they flaked under load on 2 shared cores)."""

from hypothesis import settings


def test_no_hypothesis_deadline_in_any_profile() -> None:
    assert settings.default.deadline is None
    assert settings.get_profile("ci").deadline is None
    assert settings.get_profile("local").deadline is None
