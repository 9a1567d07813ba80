"""The core every run shares: state and its reducers, the ledger, answers, prompts, inputs
(messages, images), token bounds, secrets and the run result. Imports nothing above it."""

__all__: list[str] = []
