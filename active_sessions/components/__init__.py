"""Functions that return components; they read states and never query."""
