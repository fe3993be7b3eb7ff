"""gymgen.leaderboards: suites, runner, store, statistics and reports for scoring any agent on gymgen envs."""
