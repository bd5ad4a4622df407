"""Scope decision: is a message a funding/engineering question about a local project (answer), a
local-government question on another subject, or a private person's own affair (refuse, name the door)?

A linear classifier over the query embedding the retriever already computes and French character
n-grams of the folded text, trained by `aiguillage scope train` (assistant/scope/train.py) on
evals/datasets/, split by source. The committed artefact (assistant/scope/model.npz + model.json)
is loaded at start-up, without network.
"""

from assistant.scope.model import ScopeModel, ScopeVerdict, load_scope_model

__all__ = ["ScopeModel", "ScopeVerdict", "load_scope_model"]
