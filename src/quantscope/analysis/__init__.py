"""Reserved for a later issue (see DESIGN.md)."""

__all__: list[str] = []
