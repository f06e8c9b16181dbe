"""Validation rules: ``common.py`` holds the rule types several roles share (ranges, lists, CIDRs,
names, paths, calendars); ``govbaseline.validation`` runs them, for both engines."""
