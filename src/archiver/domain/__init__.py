"""The pure core: job model, entry naming, archive layout, keys and URLs, errors and ports."""
