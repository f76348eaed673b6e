"""Batch refactoring of one notebook's cells by id (``jupyter devstral refactor``)."""
