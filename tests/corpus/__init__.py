"""A corpus of bad inputs run through every entry point (issue 19): see :mod:`.cases`."""
