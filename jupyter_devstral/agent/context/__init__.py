"""What the model sees: the context under a token budget, outputs, the variable summary,
facts about installed libraries."""
