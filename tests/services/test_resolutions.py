"""The registry's resolution map under a move: a lookup that read the database before
an alias moved must not be stored after the move (it would be served until the next
move, however long: "moving an alias takes effect for the next request")."""

from __future__ import annotations

from app.services.registry import Resolutions, Resolved
from app.services.serving import ModelKey


def _resolved(version: int) -> Resolved:
    return Resolved(ModelKey(f"run_{version}", None), "owner", version, ())


def test_a_lookup_that_began_before_a_move_is_not_stored_after_it() -> None:
    resolutions = Resolutions()
    began = resolutions.generation("m")  # a predict reads the alias: v1
    resolutions.forget("m")  # meanwhile the alias moves to v2 and is forgotten
    resolutions.put("m", "prod", _resolved(1), began)  # the predict stores what it read
    assert resolutions.get("m", "prod") is None  # the next request reads v2 again


def test_a_lookup_with_no_move_meanwhile_is_stored() -> None:
    resolutions = Resolutions()
    began = resolutions.generation("m")
    resolutions.put("m", "prod", _resolved(2), began)
    assert resolutions.get("m", "prod") == _resolved(2)
    resolutions.forget("other")  # another model's move changes nothing here
    assert resolutions.get("m", "prod") == _resolved(2)
