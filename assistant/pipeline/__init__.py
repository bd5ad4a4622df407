"""One conversation turn as a pipeline of named stages, each a plain function in its own module.

    normalise → understand → (judge.scope) → retrieve → rank → judge (eligibility, notices,
    clarification) → compose → persist

`assistant.service.Assistant` only wires them; see README « Comment ça marche » for the diagram
and what passes between the stages.
"""
