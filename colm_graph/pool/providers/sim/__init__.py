"""Provider ``sim``: the simulator (:mod:`.model`), the bundled task set it answers
(:mod:`.tasks`), safe arithmetic (:mod:`.arithmetic`) and how it writes (:mod:`.styles`)."""

__all__: list[str] = []
