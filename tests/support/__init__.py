"""Test helpers shared by test packages (fault-injection proxy)."""
