"""Fakes that alertd ships for its own tests and for its users: fake targets, clocks and servers."""
