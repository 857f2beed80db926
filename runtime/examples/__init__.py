"""Example flows shipped with flowactor (used by the README and `flowactor run`)."""
