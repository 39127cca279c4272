"""The view model: name-scope grouping, layout and node information, computed without Qt."""
