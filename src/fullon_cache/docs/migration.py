"""migration (being written)."""

GUIDE = "# migration\n"
