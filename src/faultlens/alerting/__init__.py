"""Stateful alerts: conditions -> evaluation (pending, firing, resolved) -> routing -> the outbox -> delivery."""
