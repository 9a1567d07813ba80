"""Deciding where a query goes: client selectors (:mod:`.selectors`) and router scorers
(:mod:`.scorers`)."""

__all__: list[str] = []
