"""Flows importable by entrypoint (`tests.flows.module:flow`), for reload and subprocess tests."""
