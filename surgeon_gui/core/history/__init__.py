"""The history layer: what a step changed (delta), the Document and its steps, recipes, manual edits, diffs."""
