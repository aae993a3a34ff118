"""What an installed dpsgd ships besides code: the licence, the typing marker."""

from importlib import metadata, resources


def test_the_package_is_marked_as_typed():
    assert resources.files("dpsgd").joinpath("py.typed").is_file()


def test_the_licence_is_declared():
    meta = metadata.metadata("dpsgd")
    assert "BSD-3-Clause" in (meta.get("License-Expression") or meta.get("License") or "")
