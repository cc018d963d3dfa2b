"""Command-line tools around the platform (run as ``python -m tools.<name>``)."""
