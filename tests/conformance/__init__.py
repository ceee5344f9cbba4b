"""The store conformance suite (see README.md); a package so its conftest does not shadow tests/conftest.py."""
