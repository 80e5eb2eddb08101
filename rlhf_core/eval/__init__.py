"""Generation, metrics and leaderboards."""
