"""The rule-pack lifecycle: which packs each tenant classifies with, activating one, replicas following."""
