"""testing_guide (being written)."""

GUIDE = "# testing_guide\n"
