"""Folder: partials in (the partials stream); segment aggregates, congestion metrics and SNS alerts out."""
