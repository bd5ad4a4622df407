"""Stage 5, judge: what may be said about the candidates — scope, eligibility, notices, clarification."""
