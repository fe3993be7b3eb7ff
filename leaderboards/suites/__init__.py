"""Built-in leaderboard suites (TOML), found by name: `gymgen leaderboard run quick`."""
