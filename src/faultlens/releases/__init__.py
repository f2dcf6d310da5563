"""Release gates: canary analysis, rollouts and rollback decisions, replay suites and readiness evidence."""
