"""caching_guide (being written)."""

GUIDE = "# caching_guide\n"
