"""The schema's revisions in order, one module each; its docstring says what it changes."""
